#!/bin/sh
# The paper's experiments at the scale of issue 19, then one reproduction
# page (ROOT/reproduction.html) and REPRODUCTION.md:
#   scripts/reproduce.sh [STEP ...]
# Steps, in order (all by default; name some to run only those):
#   cartpole   likelihood vs reward on cartpole-swingup: 6 PETS runs × 10
#              trials (60 models), 3 episodes each; then study metrics
#   loss       loss vs reward over epochs, 3 training seeds, trained on the
#              data of the cartpole study's first PETS run
#   reweight   the re-weighting grid, 3 seeds, 5 episodes per model
#   attack     the adversarial search on the cartpole study's best model,
#              10 CMA-ES generations of 6, each candidate scored by 3 episodes
#   cheetah    likelihood vs reward on half-cheetah (fast preset; hours)
#   cheetah-fine  the same on halfcheetah-fine, the half-cheetah at half
#              the timestep, free of the contact exploit, with runs of 30
#              trials (60 models; about 4 hours)
#   report     mismatch reproduce ROOT --markdown REPRODUCTION.md
# Every study resumes from what it finished, so the script can be stopped
# and run again. ROOT is runs/reproduce unless REPRODUCE_ROOT says otherwise.
set -eu
cd "$(dirname "$0")/.."
root=${REPRODUCE_ROOT:-runs/reproduce}
steps=${*:-cartpole loss reweight attack cheetah cheetah-fine report}
make -s build
mkdir -p "$root"
m=./bin/mismatch
log() { echo "$(date +%H:%M:%S) reproduce: $*"; }
for step in $steps; do
	log "$step"
	case $step in
	cartpole)
		$m study run --preset fast --out "$root/likelihood-reward-cartpole" population.runs=6
		$m study metrics "$root/likelihood-reward-cartpole" >"$root/likelihood-reward-cartpole.metrics.txt"
		;;
	loss)
		# Trained on a PETS run's data (its 2200 transitions cover the
		# swing-up; the preset's 600 expert transitions give models that
		# never swing up within 40 epochs), scored by NLL on the expert
		# and grid data.
		data=$root/likelihood-reward-cartpole/runs/run_000/data.npz
		[ -f "$data" ] || { echo "reproduce: loss needs the cartpole study's first PETS run" >&2; exit 1; }
		spec=$root/loss-reward-cartpole.yaml
		cat >"$spec" <<-EOF
			datasets:
			  - {name: run-data, kind: file, path: $data}
			  - {name: expert, kind: expert, episodes: 3, threshold: 175, planner: {optimizer: cem, horizon: 25, population: 400, elites: 40, iterations: 5, alpha: 0.1, min_variance: 0.001, particles: 1, propagation: ts-inf, replan_every: 1}}
			  - {name: grid, kind: grid, points: 7}
			population: {dataset: run-data}
		EOF
		$m study run --kind loss-reward --preset fast --spec "$spec" --out "$root/loss-reward-cartpole"
		;;
	reweight)
		$m study run --kind reweight --preset fast --out "$root/reweight-cartpole" population.seeds=3 evaluation.episodes=5
		;;
	attack)
		s=$root/likelihood-reward-cartpole
		[ -f "$s/table.csv" ] || { echo "reproduce: attack needs the cartpole study first" >&2; exit 1; }
		[ -f "$root/attack-cartpole/attack.json" ] && continue
		# The population's model with the best mean reward, and its run's data.
		best=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
			$col["error"] == "" && ($col["reward_mean"] > r || r == "") { r = $col["reward_mean"]; run = $col["run"]; trial = $col["trial"] }
			END { printf "%s %d\n", run, trial }' "$s/table.csv")
		run=${best% *}
		trial=${best#* }
		case $run in /*) ;; *) run=$s/$run ;; esac
		$m study attack --model "$run/models/$(printf 'trial_%03d' "$trial").safetensors" --data "$run/data.npz" \
			--expert "$s/datasets/expert.trajectory.npz" --out "$root/attack-cartpole" \
			--config bench/attack-cartpole.yaml iterations=10 search.episodes=3
		;;
	cheetah)
		$m study run --task halfcheetah --preset fast --out "$root/likelihood-reward-halfcheetah"
		;;
	cheetah-fine)
		$m study run --task halfcheetah-fine --preset fast --out "$root/likelihood-reward-halfcheetah-fine" population.pets.trials=30
		;;
	report)
		$m reproduce "$root" --markdown REPRODUCTION.md
		;;
	*)
		echo "reproduce: unknown step $step (want cartpole, loss, reweight, attack, cheetah, cheetah-fine or report)" >&2
		exit 2
		;;
	esac
done
