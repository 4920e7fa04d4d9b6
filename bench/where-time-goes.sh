#!/bin/sh
# Where a PETS control step's time goes:
#   bench/where-time-goes.sh [fp32|bf16] [GOROUTINES] [SHAPE]
# records the control step benchmark (go test -bench ControlStep ./planning:
# cartpole swing-up at mbrl-lib's notebook settings; default fp32 on 1
# goroutine; SHAPE halfcheetah is the same planner on the half-cheetah,
# halfcheetah-fast the fast presets' smaller planner there) under perf,
# groups the CPU samples by function into the parts of the README's table
# (matrix multiplies with the swish the tiles apply, other activations,
# block transposes, the task's features and reward, normalisation, Gaussian head and noise,
# the rollout's bookkeeping and CEM, gathers, kernel and Go runtime), and
# prints each part's share of the samples, that share of the step's
# seconds, and its CPU seconds a step (on more than one goroutine, the
# cores' seconds together: against the step's seconds times the
# goroutines, the rest is time a core sat idle). The peak measurement the
# benchmark starts with is left out, and the setup (the model made and
# packed, a few milliseconds) counted in. Needs perf (Debian:
# apt-get install linux-perf). Run it on a quiet machine; OPENBLAS_CORETYPE
# is unset for it, as make bench does.
set -eu
cd "$(dirname "$0")/.."
prec=${1:-fp32} g=${2:-1} shape=${3:-}
usage="usage: bench/where-time-goes.sh [fp32|bf16] [GOROUTINES] [halfcheetah|halfcheetah-fast]"
case $prec in fp32 | bf16) ;; *) echo "$usage" >&2; exit 2 ;; esac
# Steps a run: the fast planner's step is a tenth of the others'.
case $shape in "" | halfcheetah) n=5 ;; halfcheetah-fast) n=50 ;; *) echo "$usage" >&2; exit 2 ;; esac
command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 2; }
tmp=$(mktemp -d /tmp/where-time-goes.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/planning.test" ./planning
grep -m1 '^model name' /proc/cpuinfo | sed 's/.*: /CPU: /' || true
(cd "$tmp" && env -u OPENBLAS_CORETYPE perf record -q -F 4000 -o perf.data ./planning.test -test.run '^$' \
	-test.bench "ControlStep/${shape:+^$shape\$/}$prec/goroutines=$g\$" -test.benchtime ${n}x) >"$tmp/bench.out" 2>&1 ||
	{ cat "$tmp/bench.out" >&2; exit 1; }
grep '^BenchmarkControlStep' "$tmp/bench.out" || { echo "no $prec control step here (no AVX512_BF16?)" >&2; exit 1; }
step=$(awk '/^BenchmarkControlStep/ { for (i = 2; i < NF; i++) if ($(i+1) == "s/step") print $i }' "$tmp/bench.out")
perf report -i "$tmp/perf.data" --stdio --no-children --sort sym -g none --percent-limit 0 2>/dev/null |
	awk -v step="$step" -v g="$g" -v steps="$n" '
	/^# Event count/ { events = $NF }
	/^#/ || NF < 3 { next }
	{
		p = $1; sub(/%/, "", p); kind = $2; sym = $3
		if (sym ~ /^(peak_|mm_peak)/) { peak += p; next }
		if (sym ~ /^(tile|panel|mlp256_panel)/) part = "matrix multiplies (bias, swish in the tiles)"
		else if (sym ~ /^(act512|act256|mlp256_act)/) part = "other activations"
		else if (sym ~ /^(mlp_forward|pairs16|load)$/) part = "block transposes, rounding to bf16"
		else if (sym ~ /mm_sincos|mm_exp|env\/mujoco/) part = "task features and reward"
		else if (sym ~ /mm_standardize|Model\)\.(features|inputs)|inputRows/) part = "other network inputs (normalisation)"
		else if (sym ~ /mm_gauss|mm_normals|nextRows|fromTargets|Gaussian/) part = "Gaussian head, noise, next state"
		else if (sym ~ /rewardRows|planning\.|rng\./) part = "returns, termination, bookkeeping, CEM"
		else if (sym ~ /gatherRows|gatherShared|memmove|memclr/) part = "gathers and copies"
		else if (kind == "[k]" || sym ~ /^(runtime\.|__sched|__vdso|_raw|do_|futex|gomp|GOMP|__libc|__futex|syscall)/) part = "kernel and Go runtime"
		else part = "other"
		share[part] += p; total += p
	}
	END {
		n = split("matrix multiplies (bias, swish in the tiles)|other activations|block transposes, rounding to bf16|task features and reward|other network inputs (normalisation)|Gaussian head, noise, next state|returns, termination, bookkeeping, CEM|gathers and copies|kernel and Go runtime|other", order, "|")
		cpu = events / 1e9 / steps * total / (total + peak) # CPU seconds a step, the peak left out
		printf "%-48s %8s %9s %12s\n", "part", "share", "seconds", "CPU seconds"
		for (i = 1; i <= n; i++) printf "%-48s %7.2f%% %9.4f %12.4f\n", order[i], 100 * share[order[i]] / total, step * share[order[i]] / total, cpu * share[order[i]] / total
		printf "%-48s %7.2f%% %9.4f %12.4f  (of %.4f on %d goroutine(s); the peak measurement, %.1f%% of the samples, left out)\n", "step (under perf)", 100, step, cpu, step * g, g, peak
	}'
