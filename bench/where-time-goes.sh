#!/bin/sh
# Where a PETS control step's time goes:
#   bench/where-time-goes.sh [fp32|bf16] [GOROUTINES]
# records the control step benchmark (go test -bench ControlStep ./planning:
# cartpole swing-up at mbrl-lib's notebook settings; default fp32 on 1
# goroutine) under perf, groups the CPU samples by function into the parts
# of the README's table (matrix multiplies, activation, block transposes,
# the task's features and reward, normalisation, Gaussian head and noise,
# the rollout's bookkeeping and CEM, gathers, kernel and Go runtime), and prints each part's
# share of the samples and that share of the step's seconds. The peak
# measurement the benchmark starts with is left out. Needs perf (Debian:
# apt-get install linux-perf). Run it on a quiet machine; OPENBLAS_CORETYPE
# is unset for it, as make bench does.
set -eu
cd "$(dirname "$0")/.."
prec=${1:-fp32} g=${2:-1}
case $prec in fp32 | bf16) ;; *) echo "usage: bench/where-time-goes.sh [fp32|bf16] [GOROUTINES]" >&2; exit 2 ;; esac
command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 2; }
tmp=$(mktemp -d /tmp/where-time-goes.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/planning.test" ./planning
grep -m1 '^model name' /proc/cpuinfo | sed 's/.*: /CPU: /' || true
(cd "$tmp" && env -u OPENBLAS_CORETYPE perf record -q -F 4000 -o perf.data ./planning.test -test.run '^$' \
	-test.bench "ControlStep/$prec/goroutines=$g\$" -test.benchtime 5x) >"$tmp/bench.out" 2>&1 ||
	{ cat "$tmp/bench.out" >&2; exit 1; }
grep '^BenchmarkControlStep' "$tmp/bench.out" || { echo "no $prec control step here (no AVX512_BF16?)" >&2; exit 1; }
step=$(awk '/^BenchmarkControlStep/ { for (i = 2; i < NF; i++) if ($(i+1) == "s/step") print $i }' "$tmp/bench.out")
perf report -i "$tmp/perf.data" --stdio --no-children --sort sym -g none --percent-limit 0 2>/dev/null |
	awk -v step="$step" '
	/^#/ || NF < 3 { next }
	{
		p = $1; sub(/%/, "", p); kind = $2; sym = $3
		if (sym ~ /^(peak_|mm_peak)/) { peak += p; next }
		if (sym ~ /^(tile|panel|mlp256_panel)/) g = "matrix multiplies (bias in the tiles)"
		else if (sym ~ /^(act512|act256|mlp256_act)/) g = "activation (swish)"
		else if (sym ~ /^(mlp_forward|pairs16|load)$/) g = "block transposes, rounding to bf16"
		else if (sym ~ /mm_sincos|mm_exp|env\/mujoco/) g = "task features and reward"
		else if (sym ~ /mm_standardize|Model\)\.(features|inputs)|inputRows/) g = "other network inputs (normalisation)"
		else if (sym ~ /mm_gauss|mm_normals|nextRows|fromTargets|Gaussian/) g = "Gaussian head, noise, next state"
		else if (sym ~ /rewardRows|planning\.|rng\./) g = "returns, termination, bookkeeping, CEM"
		else if (sym ~ /gatherRows|gatherShared|memmove|memclr/) g = "gathers and copies"
		else if (kind == "[k]" || sym ~ /^(runtime\.|__sched|__vdso|_raw|do_|futex|gomp|GOMP|__libc|__futex|syscall)/) g = "kernel and Go runtime"
		else g = "other"
		share[g] += p; total += p
	}
	END {
		n = split("matrix multiplies (bias in the tiles)|activation (swish)|block transposes, rounding to bf16|task features and reward|other network inputs (normalisation)|Gaussian head, noise, next state|returns, termination, bookkeeping, CEM|gathers and copies|kernel and Go runtime|other", order, "|")
		printf "%-48s %8s %9s\n", "part", "share", "seconds"
		for (i = 1; i <= n; i++) printf "%-48s %7.2f%% %9.4f\n", order[i], 100 * share[order[i]] / total, step * share[order[i]] / total
		printf "%-48s %7.2f%% %9.4f  (the peak measurement, %.1f%% of the samples, left out)\n", "step (under perf)", 100, step, peak
	}'
