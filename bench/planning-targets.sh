#!/bin/sh
# The planning speed targets, checked on the machine at hand:
#   bench/planning-targets.sh [ROUNDS]
# runs the PETS control step benchmark (go test -bench ControlStep
# ./planning: cartpole swing-up at mbrl-lib's notebook settings) ROUNDS
# times (default 5) and prints, from the medians: the fp32 step on 2
# goroutines as a multiple of the fp32 floor (target: at most 1.25), and
# how much faster bf16 is than fp32 on 1 and on 2 goroutines (target: at
# least 2, on a CPU with AVX512_BF16), each with PASS or FAIL, and the CPU.
# Run it on a quiet machine; OPENBLAS_CORETYPE is unset for it, as make
# bench does. The exit status is 0 when every target measured is met.
set -eu
cd "$(dirname "$0")/.."
rounds=${1:-5}
out=$(mktemp /tmp/planning-targets.XXXXXX)
trap 'rm -f "$out"' EXIT
grep -m1 '^model name' /proc/cpuinfo | sed 's/.*: /CPU: /' || true
env -u OPENBLAS_CORETYPE go test -run '^$' -bench 'ControlStep/(fp32|bf16)/' -benchtime 5x -count "$rounds" ./planning >"$out"
grep -q '^BenchmarkControlStep/bf16' "$out" || echo "no AVX512_BF16 here: bf16 not measured"
awk '
function median(a, n,    i, j, t) {
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
/^BenchmarkControlStep\/(fp32|bf16)\/goroutines=[12]/ {
	split($1, p, "/"); prec = p[2]; g = substr(p[3], 12, 1)
	for (i = 2; i < NF; i++) {
		if ($(i+1) == "s/step") s[prec g, ++ns[prec g]] = $i
		if ($(i+1) == "x-fp32-floor") r[prec g, ++nr[prec g]] = $i
	}
}
END {
	ok = 1
	for (g = 1; g <= 2; g++) {
		if (!ns["fp32" g]) continue
		for (i = 1; i <= ns["fp32" g]; i++) a[i] = s["fp32" g, i]
		fs[g] = median(a, ns["fp32" g])
		for (i = 1; i <= nr["fp32" g]; i++) a[i] = r["fp32" g, i]
		fr[g] = median(a, nr["fp32" g])
		printf "fp32, %d goroutine(s): %.3f s a step, %.3f x the fp32 floor (median of %d)\n", g, fs[g], fr[g], ns["fp32" g]
	}
	if (2 in fr) { v = fr[2] <= 1.25; ok = ok && v; printf "target fp32 <= 1.25 x floor on 2 goroutines: %.3f  %s\n", fr[2], v ? "PASS" : "FAIL" }
	for (g = 1; g <= 2; g++) {
		if (!ns["bf16" g] || !(g in fs)) continue
		for (i = 1; i <= ns["bf16" g]; i++) a[i] = s["bf16" g, i]
		b = median(a, ns["bf16" g])
		v = fs[g] / b >= 2; ok = ok && v
		printf "bf16, %d goroutine(s): %.3f s a step, %.2f x faster than fp32 (target >= 2): %s\n", g, b, fs[g] / b, v ? "PASS" : "FAIL"
	}
	exit ok ? 0 : 1
}' "$out"
