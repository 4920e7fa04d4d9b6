#!/bin/sh
# PETS with the fast preset on a MuJoCo task, against the same planner on
# the true simulator:
#   bench/pets-task.sh TASK [SEED]     (halfcheetah, halfcheetah-fine, reacher or pusher)
# First the expert (bench/expert with the preset's planner, 2 episodes;
# kept in runs/bench-TASK-expert.txt), then the PETS run (resumed from
# runs/bench-TASK-fast-seedN). It prints each trial and checks the issue's
# figure: the best MPC trial's reward, measured from the random trial's
# towards the expert's, reaches FRACTION of the way (half-cheetah 0.5,
# reacher and pusher 0.8; the arm tasks' rewards are negative, so the
# random trial is the zero). Long: see the README for times.
set -eu
cd "$(dirname "$0")/.."
task=${1:?usage: bench/pets-task.sh TASK [SEED]}
seed=${2:-1}
case $task in
halfcheetah | halfcheetah-fine) want=0.5 ;;
reacher | pusher) want=0.8 ;;
*) echo "bench/pets-task.sh: no target for task $task" >&2; exit 2 ;;
esac
make -s build
mkdir -p runs
expert=runs/bench-$task-expert.txt
if [ ! -s "$expert" ]; then
	env -u OPENBLAS_CORETYPE go run ./bench/expert -task "$task" -preset fast -episodes 2 >"$expert.tmp"
	mv "$expert.tmp" "$expert"
fi
cat "$expert"
dir=runs/bench-$task-fast-seed$seed
start=$(date +%s)
env -u OPENBLAS_CORETYPE ./bin/mismatch pets --task "$task" --preset fast --out "$dir" seed="$seed" >"$dir.log" 2>&1 || { tail -n 20 "$dir.log"; exit 1; }
echo "wall time of this invocation: $(( $(date +%s) - start )) s on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
ref=$(awk '/^mean reward/ {print $3}' "$expert")
awk -F, -v task="$task" -v ref="$ref" -v want="$want" '
	NR == 1 { next }
	$2 == "random" && rnd == "" { rnd = $3 }
	$2 == "mpc" {
		printf "%s trial %2d reward %9.2f  plan %5.0f ms/step  train %6.1f s\n", task, $1, $3, $12, $10
		if (best == "" || $3 > best) best = $3
	}
	END {
		frac = (best - rnd) / (ref - rnd)
		ok = frac >= want
		printf "%s: best trial %.2f, random trial %.2f, expert %.2f: %.2f of the way (want >= %s): %s\n", task, best, rnd, ref, frac, want, ok ? "PASS" : "FAIL"
		exit ok ? 0 : 1
	}' "$dir/trials.csv"
