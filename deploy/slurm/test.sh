#!/bin/sh
# The cluster test: brings up a single-node Slurm from Debian's packages
# (slurm-wlm and munge, installed when missing; daemons started here, no
# systemd, no accounting), submits a small study through submit.sh and
# checks its merged table and correlations against a one-process run of the
# same spec (timing columns excepted). Then it submits the study again,
# cancels one cells task while it runs, checks that merge names the missing
# cells and their shard, resubmits that shard as submit.sh documents, and
# checks the result again; and a loss-vs-reward study, which has no PETS
# runs to shard. The daemons it started are stopped by their
# process ids. Needs root (munged, slurmctld and slurmd run as root here).
#
#   deploy/slurm/test.sh        (make test-slurm; part of make test)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
	echo "slurm test: skipped, it needs root to start munged, slurmctld and slurmd" >&2
	exit 0
fi
"$root/scripts/deps.sh" slurm

T=$(mktemp -d /tmp/mismatch-slurm.XXXXXX)
pids=""
status=1
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
		kill -9 "$p" 2>/dev/null || true
	done
	if [ $status -eq 0 ]; then rm -rf "$T"; else echo "slurm test: FAILED; its files are in $T" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() {
	echo "slurm test: $*" >&2
	exit 1
}

# The daemons, on ports of their own.
mkdir -p "$T/munge" "$T/state" "$T/spool" "$T/logs"
chmod 700 "$T/munge"
mungekey -c -k "$T/munge/munge.key"
munged -F --force --socket="$T/munge/socket" --key-file="$T/munge/munge.key" --log-file="$T/munge/log" \
	--pid-file="$T/munge/pid" --seed-file="$T/munge/seed" >"$T/logs/munged.out" 2>&1 &
pids="$pids $!"
host=$(hostname -s)
port=$((20000 + $$ % 20000))
cat >"$T/slurm.conf" <<EOF
ClusterName=mismatchtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge/socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/logs/slurmctld.log
SlurmdLogFile=$T/logs/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$T/slurm.conf"
i=0
until munge -S "$T/munge/socket" -n >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 50 ] || fail "munged did not start: $(cat "$T/logs/munged.out")"; sleep 0.1
done
slurmctld -D -i >"$T/logs/slurmctld.out" 2>&1 &
pids="$pids $!"
slurmd -D >"$T/logs/slurmd.out" 2>&1 &
pids="$pids $!"
i=0
until [ "$(sinfo -h -o %t 2>/dev/null)" = idle ]; do
	i=$((i + 1)); [ $i -lt 300 ] || fail "the node is not idle after 30 s: $(sinfo 2>&1); see $T/logs"; sleep 0.1
done

# The program, and a study small enough for a few minutes on 2 cores whose
# cells last a few seconds each (so that one can be cancelled mid-run).
cd "$root"
${GO:-go} build -o "$T/mismatch" ./cmd/mismatch
cat >"$T/spec.yaml" <<'EOF'
task: pointmass
datasets:
  - {name: grid, kind: grid, points: 3}
  - {name: on-policy, kind: on-policy}
population:
  runs: 4
  pets: {task: pointmass, random_trials: 1, trials: 2, model: {class: PE, members: 2, hidden: [16], activation: swish},
         train: {epochs: 5, batch_size: 32, lr: 0.003}, planner: {optimizer: cem, horizon: 6, population: 20, elites: 4, iterations: 2, alpha: 0.1, particles: 2, propagation: ts-inf, replan_every: 1}}
evaluation:
  episodes: 4
  planner: {optimizer: cem, horizon: 10, population: 400, elites: 40, iterations: 5, alpha: 0.1, particles: 8, propagation: ts-inf, replan_every: 1}
EOF
set -- --task pointmass --spec "$T/spec.yaml" seed=3
"$T/mismatch" study run --preset fast "$@" --out "$T/one" --workers 2 >"$T/logs/one.out" 2>&1 || fail "one-process run: $(tail -n 20 "$T/logs/one.out")"

# stable FILE: the CSV without its timing column.
stable() {
	awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "seconds") drop = i }
		{ s = ""; for (i = 1; i <= NF; i++) if (i != drop) s = s (s == "" ? "" : ",") $i; print s }' "$1"
}
same() {
	for f in table.csv correlations.csv; do
		[ -f "$1/$f" ] || fail "$1 has no $f"
		stable "$T/one/$f" >"$T/want.csv"
		stable "$1/$f" >"$T/got.csv"
		cmp -s "$T/want.csv" "$T/got.csv" || fail "$f of $1 differs from the one-process run's: $(diff "$T/want.csv" "$T/got.csv" | head -n 10)"
	done
}
# wait_jobs SECONDS: until no job is queued or running; a job left waiting
# on a dependency that failed is an error (it would wait for ever).
wait_jobs() {
	i=0
	while [ -n "$(squeue -h -o %i)" ]; do
		if squeue -h -o %r | grep -q DependencyNeverSatisfied; then
			sleep 3 # what --kill-on-invalid-dep takes to act
			! squeue -h -o %r | grep -q DependencyNeverSatisfied || fail "a job waits for ever on a failed dependency: $(squeue)"
		fi
		i=$((i + 1)); [ $i -lt $(($1 * 2)) ] || fail "jobs still queued after $1 s: $(squeue)"; sleep 0.5
	done
}
submit() {
	MISMATCH="$T/mismatch" PRESET=fast SHARDS=3 CPUS=1 "$root/deploy/slurm/submit.sh" "$@" 2>>"$T/logs/submit.out"
}

# 1. A study through submit.sh, in a directory whose name has a space.
STUDY="$T/study one" submit "$@" || fail "submit.sh: $(cat "$T/logs/submit.out")"
wait_jobs 300
same "$T/study one"
echo "slurm test: a study submitted through submit.sh merged into the one-process run's table and correlations" >&2

# 2. One cells task cancelled while it runs.
export STUDY="$T/study two"
submit "$@" || fail "submit.sh: $(cat "$T/logs/submit.out")"
cells=$(squeue -h -n mismatch-cells -o %F | head -n 1)
[ -n "$cells" ] || fail "no cells job queued"
i=0
until squeue -h -j "${cells}_1" -t RUNNING -o %i 2>/dev/null | grep -q .; do
	i=$((i + 1)); [ $i -lt 1200 ] || fail "cells task 1 never ran: $(squeue)"; sleep 0.1
done
# Cancel it when it has finished its first cell, in the middle of the next.
i=0
until grep -q "cell 1/" "$STUDY-logs/mismatch-cells-${cells}_1.out" 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 1200 ] || fail "cells task 1 finished no cell in 2 minutes"; sleep 0.1
done
scancel "${cells}_1"
wait_jobs 300
[ ! -f "$STUDY/table.csv" ] || fail "the study was merged although a cells task was cancelled"
if "$T/mismatch" study merge "$STUDY" >"$T/logs/merge.out" 2>&1; then
	fail "merge succeeded with a shard cancelled (it finished before the cancel?): $(cat "$T/logs/merge.out")"
fi
grep -q "shard 1 of 3" "$T/logs/merge.out" || fail "merge does not name the missing cells' shard: $(cat "$T/logs/merge.out")"
grep -q "ARRAY=1 " "$T/logs/merge.out" || fail "merge does not say how to resubmit the shard: $(cat "$T/logs/merge.out")"
missing=$(grep -c "^  run.*: row [0-9]* of population.csv (from 0), shard 1 of 3$" "$T/logs/merge.out" || true)
[ "$missing" -gt 0 ] || fail "merge names no missing cell: $(cat "$T/logs/merge.out")"
echo "slurm test: with cells task 1 cancelled, merge names $missing missing cells of shard 1" >&2
FROM=cells ARRAY=1 submit "$@" || fail "resubmission: $(cat "$T/logs/submit.out")"
wait_jobs 300
same "$STUDY"
echo "slurm test: the resubmitted shard completed the study" >&2

# 3. A loss-vs-reward study: no PETS runs, so no runs step.
cat >"$T/loss.yaml" <<'EOF'
task: pointmass
datasets:
  - {name: grid, kind: grid, points: 3}
  - {name: uniform, kind: uniform, samples: 200}
population: {kind: epochs, dataset: uniform, epochs: 6, every: 2,
  model: {class: PE, members: 2, hidden: [16], activation: swish}, train: {batch_size: 16, lr: 0.003}}
evaluation:
  episodes: 1
  planner: {optimizer: cem, horizon: 6, population: 20, elites: 4, iterations: 2, alpha: 0.1, particles: 2, propagation: ts-inf, replan_every: 1}
EOF
set -- --kind loss-reward --task pointmass --spec "$T/loss.yaml"
rm -rf "$T/one"
"$T/mismatch" study run --preset fast "$@" --out "$T/one" >"$T/logs/one.out" 2>&1 || fail "one-process loss-reward run: $(tail -n 20 "$T/logs/one.out")"
STUDY="$T/study three" submit "$@" || fail "submit.sh, loss-reward: $(cat "$T/logs/submit.out")"
wait_jobs 300
[ ! -d "$T/study three/runs" ] || fail "a loss-reward study got PETS runs"
same "$T/study three"
echo "slurm test: a loss-reward study went through submit.sh without a runs step; passed" >&2
status=0
