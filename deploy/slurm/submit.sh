#!/bin/sh
# Submits a study to Slurm as up to four dependent jobs:
#   runs     an array, one task per shard of the population's PETS runs
#            (only for populations of PETS runs; other kinds skip it)
#   prepare  one task: the datasets and the population table
#   cells    an array of SHARDS tasks evaluating the cells
#   merge    one task: checks every cell is there, merges and reports
# Every step resumes what an earlier attempt left, so any step or any task
# can be submitted again.
#
#   STUDY=/shared/studies/cartpole deploy/slurm/submit.sh [study options and key=value ...]
#
# The arguments are those of `mismatch study prepare` (--spec FILE, --kind,
# --task, --preset, key=value overrides), passed to every step as given.
# Settings, from the environment:
#   STUDY       the study directory, on a file system every node shares (required)
#   MISMATCH    the mismatch binary, on that shared file system; default: mismatch on
#               PATH, else this checkout's bin/mismatch (make build)
#   PRESET      default paper (KIND and TASK also still work: --kind, --task)
#   SHARDS      cells tasks, default 100; the cell at row p of population.csv is in
#               shard p mod SHARDS
#   RUNS        runs tasks, default the population's run count
#   CPUS        CPUs per task and cells evaluated at once per task, default 2
#   RUN_TIME PREP_TIME CELL_TIME MERGE_TIME
#               time limits, default 24:00:00, 4:00:00, 24:00:00, 1:00:00
#   LOGS        job logs, default $STUDY-logs (the study directory holds only
#               what mismatch writes)
#   FROM        first step to submit: runs, prepare, cells or merge (default runs)
#   ARRAY       task ids of FROM's array to submit (default all), e.g. 7 or 3,9
# Slurm's own SBATCH_PARTITION, SBATCH_ACCOUNT, ... apply to every job.
#
# A failed or cancelled task cancels the jobs after it. `mismatch study merge`
# names the cells missing and their shards; submit them again with the same
# settings and arguments, for example
#   FROM=cells ARRAY=7 STUDY=... deploy/slurm/submit.sh --spec my.yaml
set -eu
: "${STUDY:?set STUDY to a directory all nodes share}"
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${MISMATCH:-}" ]; then
	MISMATCH=$(command -v mismatch || true)
	[ -n "$MISMATCH" ] || MISMATCH=$here/../../bin/mismatch
fi
case $MISMATCH in /*) ;; */*) MISMATCH=$(pwd)/$MISMATCH ;; esac
[ -x "$MISMATCH" ] || { echo "submit.sh: no mismatch binary at $MISMATCH: run make build, or set MISMATCH" >&2; exit 2; }
case $STUDY in /*) ;; *) STUDY=$(pwd)/$STUDY ;; esac
[ -n "${TASK:-}" ] && set -- --task "$TASK" "$@"
[ -n "${KIND:-}" ] && set -- --kind "$KIND" "$@"
set -- --preset "${PRESET:-paper}" "$@"
SHARDS=${SHARDS:-100}
CPUS=${CPUS:-2}
LOGS=${LOGS:-$STUDY-logs}
FROM=${FROM:-runs}
ARRAY=${ARRAY:-}

# The arguments are checked here, before anything is queued.
runs=$("$MISMATCH" study prepare "$@" --out "$STUDY" --count-runs)
RUNS=${RUNS:-$runs}
mkdir -p "$LOGS"

case $FROM in
runs | prepare | cells | merge) ;;
*) echo "submit.sh: FROM=$FROM: want runs, prepare, cells or merge" >&2; exit 2 ;;
esac

dep=
started=
# submit NAME ARRAYSIZE TIME COMMAND...: queues one step after the last,
# if FROM has been reached; prints nothing.
submit() {
	name=$1 size=$2 limit=$3
	shift 3
	[ "$name" = "$FROM" ] && started=1
	[ -n "$started" ] || return 0
	set -- --parsable --job-name="mismatch-$name" --cpus-per-task="$CPUS" --time="$limit" "$@"
	if [ "$size" -gt 0 ]; then
		ids=$(( size - 1 ))
		ids=0-$ids
		[ "$name" = "$FROM" ] && [ -n "$ARRAY" ] && ids=$ARRAY
		set -- --array="$ids" --output="$LOGS/%x-%A_%a.out" "$@"
	else
		set -- --output="$LOGS/%x-%j.out" "$@"
	fi
	[ -n "$dep" ] && set -- --dependency="afterok:$dep" --kill-on-invalid-dep=yes "$@"
	dep=$(sbatch "$@")
	echo "$name: job $dep" >&2
}

if [ "$RUNS" -gt 0 ]; then
	submit runs "$RUNS" "${RUN_TIME:-24:00:00}" "$here/step.sh" "$MISMATCH" study prepare "$@" --out "$STUDY" --shard "auto/$RUNS"
elif [ "$FROM" = runs ]; then
	FROM=prepare # nothing to shard before preparing
fi
submit prepare 0 "${PREP_TIME:-4:00:00}" "$here/step.sh" "$MISMATCH" study prepare "$@" --out "$STUDY"
submit cells "$SHARDS" "${CELL_TIME:-24:00:00}" "$here/step.sh" "$MISMATCH" study run --out "$STUDY" --shard "auto/$SHARDS" --workers "$CPUS"
submit merge 0 "${MERGE_TIME:-1:00:00}" "$here/step.sh" "$MISMATCH" study merge "$STUDY"
echo "logs in $LOGS; squeue --me shows the jobs; when merge is done: $STUDY/report.html" >&2
