#!/bin/sh
# Applies the study's Jobs in order, each after the previous completed.
#   deploy/kubernetes/run.sh [namespace] [first step: runs, prepare, cells or merge]
# A step already applied is deleted and applied again; it resumes what its
# earlier attempt finished. Start at prepare for studies whose population
# is not PETS runs.
set -eu
ns=${1:-default}
from=${2:-runs}
dir=$(dirname "$0")
case $from in runs | prepare | cells | merge) ;; *) echo "run.sh: first step $from: want runs, prepare, cells or merge" >&2; exit 2 ;; esac
started=
for step in runs prepare cells merge; do
	[ "$step" = "$from" ] && started=1
	[ -n "$started" ] || continue
	job=mismatch-$step
	kubectl -n "$ns" delete --ignore-not-found "job/$job"
	# Apply one Job at a time from the multi-document file.
	awk -v name="$job" 'BEGIN{RS="---\n"} $0 ~ "kind: PersistentVolumeClaim" || $0 ~ "name: " name "\n" {print "---"; print}' "$dir/study.yaml" |
		kubectl -n "$ns" apply -f -
	kubectl -n "$ns" wait --for=condition=complete --timeout=72h "job/$job"
done
echo "study merged; fetch /study/report.html from the volume"
