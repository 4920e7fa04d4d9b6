#!/bin/sh
# The adversarial model search on cartpole-swingup (bench/attack-cartpole.yaml):
# attacks a model of the PETS benchmark run (bench/pets-cartpole.sh) under
# the likelihood of that run's whole data set, then checks the acceptance
# figures: the original scores at least 170, the adversary at least 30%
# less, and the adversary's held-out NLL is no worse. About 35 minutes on
# 2 cores. Arguments: model checkpoint, held-out data, output directory,
# then any key=value overrides of the config.
set -eu
cd "$(dirname "$0")/.."
make -s build
model=${1:-runs/bench-cartpole-seed1/models/trial_008.safetensors}
held=${2:-runs/bench-cartpole-seed1/data.npz}
out=${3:-runs/attack-cartpole}
[ $# -ge 3 ] && shift 3 || shift $#
expert=""
[ -f runs/study-fast/datasets/expert.trajectory.npz ] && expert="--expert runs/study-fast/datasets/expert.trajectory.npz"
# shellcheck disable=SC2086
env -u OPENBLAS_CORETYPE ./bin/mismatch study attack --model "$model" --data "$held" $expert --out "$out" \
	--config bench/attack-cartpole.yaml "$@" | tee "$out.txt"
awk '/^reward/ {
	before = $2; after = $6; nll0 = $(NF-2); nll1 = $NF; sub(/;$/, "", after)
	ok = before >= 170 && after <= 0.7 * before && nll1 <= nll0
	printf "original %.2f (want >= 170), adversary %.2f (want <= %.2f), held-out NLL %s -> %s (want no worse): %s\n", before, after, 0.7 * before, nll0, nll1, ok ? "PASS" : "FAIL"
	exit ok ? 0 : 1
}' "$out.txt"
