#!/bin/sh
# Runs a study on a Slurm cluster in four dependent jobs:
#   1. an array of RUNS tasks runs the population's PETS runs;
#   2. one task builds the datasets and the population table;
#   3. an array of SHARDS tasks evaluates the cells;
#   4. one task checks that every cell is there, merges and reports.
# Every step resumes what an earlier, interrupted attempt left, so a failed
# job can simply be resubmitted.
#
#   STUDY=/shared/studies/cartpole PRESET=paper RUNS=50 SHARDS=100 deploy/slurm/submit.sh
set -eu
: "${STUDY:?set STUDY to a directory all nodes share}"
PRESET=${PRESET:-paper}
KIND=${KIND:-likelihood-reward}
TASK=${TASK:-cartpole-swingup}
RUNS=${RUNS:-50}
SHARDS=${SHARDS:-100}
MISMATCH=${MISMATCH:-mismatch}
mkdir -p "$STUDY/logs"
common="--preset $PRESET --kind $KIND --task $TASK --out $STUDY"
sb() { sbatch --parsable --cpus-per-task="${CPUS:-2}" --output="$STUDY/logs/%x-%A_%a.out" "$@"; }

runs=$(sb --job-name=mismatch-runs --array=0-$((RUNS - 1)) --time="${RUN_TIME:-24:00:00}" \
	--wrap="$MISMATCH study prepare $common --shard auto/$RUNS")
prep=$(sb --job-name=mismatch-prepare --dependency=afterok:$runs --time="${PREP_TIME:-4:00:00}" \
	--wrap="$MISMATCH study prepare $common")
cells=$(sb --job-name=mismatch-cells --array=0-$((SHARDS - 1)) --dependency=afterok:$prep --time="${CELL_TIME:-24:00:00}" \
	--wrap="$MISMATCH study run --out $STUDY --shard auto/$SHARDS --workers \${SLURM_CPUS_PER_TASK:-2}")
merge=$(sb --job-name=mismatch-merge --dependency=afterok:$cells --time=1:00:00 \
	--wrap="$MISMATCH study merge $STUDY")
echo "submitted: runs $runs, prepare $prep, cells $cells, merge $merge"
