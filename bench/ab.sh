#!/bin/sh
# Interleaved A/B of a Go benchmark across commits: the development
# machines are virtual and their speed drifts by 15-20% within hours, so
# figures of two builds compare only when measured by turns in one sitting.
#   bench/ab.sh [-n ROUNDS] [-p PACKAGE] [-b REGEX] [-t BENCHTIME] REV...
# builds the package's test binary at each revision (a git worktree each;
# "." is the working tree as it is), then runs the benchmarks ROUNDS times
# (default 3), every revision once per round in turn, and prints each
# benchmark's figures per revision, with their median. Defaults: package
# ./planning, regex ControlStep, benchtime 5x. OPENBLAS_CORETYPE is unset
# for the runs, as make bench does. Run it on a quiet machine.
set -eu
cd "$(dirname "$0")/.."
rounds=3 pkg=./planning re=ControlStep bt=5x
while getopts n:p:b:t: o; do
	case $o in
	n) rounds=$OPTARG ;;
	p) pkg=$OPTARG ;;
	b) re=$OPTARG ;;
	t) bt=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: bench/ab.sh [-n ROUNDS] [-p PACKAGE] [-b REGEX] [-t BENCHTIME] REV..." >&2; exit 2; }
tmp=$(mktemp -d /tmp/mismatch-ab.XXXXXX)
trap 'for w in "$tmp"/wt-*; do [ -d "$w" ] && git worktree remove --force "$w"; done; rm -rf "$tmp"' EXIT
i=0
for rev in "$@"; do
	i=$((i + 1))
	if [ "$rev" = . ]; then
		go test -c -o "$tmp/$i.test" "$pkg"
	else
		git worktree add -q --detach "$tmp/wt-$i" "$rev"
		(cd "$tmp/wt-$i" && go test -c -o "$tmp/$i.test" "$pkg")
	fi
done
dir=$(go list -f '{{.Dir}}' "$pkg")
r=0
while [ $r -lt "$rounds" ]; do
	r=$((r + 1))
	i=0
	for rev in "$@"; do
		i=$((i + 1))
		(cd "$dir" && env -u OPENBLAS_CORETYPE "$tmp/$i.test" -test.run '^$' -test.bench "$re" -test.benchtime "$bt") |
			awk -v rev="$rev" '/^Benchmark/ { for (f = 3; f < NF; f += 2) print rev, $1, $(f + 1), $f }' >>"$tmp/results"
	done
done
# One line per benchmark, metric and revision: the figures of each round,
# then their median.
sort -k2,2 -k3,3 -s "$tmp/results" | awk '
	{ key = $2 " " $3 " " $1; if (!(key in vals)) order[n++] = key; vals[key] = vals[key] " " $4 }
	END {
		for (k = 0; k < n; k++) {
			m = split(vals[order[k]], v, " ")
			for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++) if (v[b] + 0 < v[a] + 0) { t = v[a]; v[a] = v[b]; v[b] = t }
			med = m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
			printf "%-70s %s  median %s\n", order[k], vals[order[k]], med
		}
	}'
