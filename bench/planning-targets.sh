#!/bin/sh
# The planning speed targets, checked on the machine at hand:
#   bench/planning-targets.sh [ROUNDS]
# runs the PETS control step benchmark (go test -bench ControlStep
# ./planning: cartpole swing-up at mbrl-lib's notebook settings) ROUNDS
# times (default 5), each round all four cases (fp32 and bf16, 1 and 2
# goroutines) back to back in a process of its own that measures the floor
# again, so that the VM's drift over minutes falls on both sides of a
# ratio; and prints the medians over the rounds: of the fp32 step on 2
# goroutines as a multiple of the fp32 floor (target: at most 1.25), and
# of how much faster bf16 is than fp32 in the same round on 1 and on 2
# goroutines (target: at least 2, on a CPU with AVX512_BF16), each with
# PASS or FAIL, and the CPU.
# Run it on a quiet machine; OPENBLAS_CORETYPE is unset for it, as make
# bench does. The exit status is 0 when every target measured is met.
set -eu
cd "$(dirname "$0")/.."
rounds=${1:-5}
out=$(mktemp /tmp/planning-targets.XXXXXX)
grep -m1 '^model name' /proc/cpuinfo | sed 's/.*: /CPU: /' || true
bin=$(mktemp /tmp/planning-targets-test.XXXXXX)
trap 'rm -f "$out" "$bin"' EXIT
go test -c -o "$bin" ./planning
for r in $(seq "$rounds"); do
	echo "round $r" >>"$out"
	(cd planning && env -u OPENBLAS_CORETYPE "$bin" -test.run '^$' -test.bench 'ControlStep/(fp32|bf16)/' -test.benchtime 5x) >>"$out"
done
grep -q '^BenchmarkControlStep/bf16' "$out" || echo "no AVX512_BF16 here: bf16 not measured"
awk '
function median(a, n,    i, j, t) {
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
/^round / { rd = $2; nrd = rd }
/^BenchmarkControlStep\/(fp32|bf16)\/goroutines=[12]/ {
	split($1, p, "/"); prec = p[2]; g = substr(p[3], 12, 1)
	for (i = 2; i < NF; i++) {
		if ($(i+1) == "s/step") s[prec g, rd] = $i
		if ($(i+1) == "x-fp32-floor") r[prec g, rd] = $i
	}
}
END {
	ok = 1
	for (g = 1; g <= 2; g++) {
		n = 0
		for (k = 1; k <= nrd; k++) if ((("fp32" g, k) in s)) { a[++n] = s["fp32" g, k]; b[n] = r["fp32" g, k] }
		if (!n) continue
		fs = median(a, n); fr[g] = median(b, n)
		printf "fp32, %d goroutine(s): %.3f s a step, %.3f x the fp32 floor (medians of %d rounds)\n", g, fs, fr[g], n
	}
	if (2 in fr) { v = fr[2] <= 1.25; ok = ok && v; printf "target fp32 <= 1.25 x floor on 2 goroutines: %.3f  %s\n", fr[2], v ? "PASS" : "FAIL" }
	for (g = 1; g <= 2; g++) {
		n = 0
		for (k = 1; k <= nrd; k++) if ((("fp32" g, k) in s) && (("bf16" g, k) in s)) { a[++n] = s["bf16" g, k]; b[n] = s["fp32" g, k] / s["bf16" g, k] }
		if (!n) continue
		bs = median(a, n); q = median(b, n)
		v = q >= 2; ok = ok && v
		printf "bf16, %d goroutine(s): %.3f s a step, %.2f x faster than fp32 in the same round (target >= 2): %s\n", g, bs, q, v ? "PASS" : "FAIL"
	}
	exit ok ? 0 : 1
}' "$out"
