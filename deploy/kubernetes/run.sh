#!/bin/sh
# Applies the study's Jobs in order, each after the previous completed.
#   deploy/kubernetes/run.sh [namespace]
set -eu
ns=${1:-default}
dir=$(dirname "$0")
for job in mismatch-runs mismatch-prepare mismatch-cells mismatch-merge; do
	# Apply one Job at a time from the multi-document file.
	awk -v name="$job" 'BEGIN{RS="---\n"} $0 ~ "kind: PersistentVolumeClaim" || $0 ~ "name: " name "\n" {print "---"; print}' "$dir/study.yaml" |
		kubectl -n "$ns" apply -f -
	kubectl -n "$ns" wait --for=condition=complete --timeout=72h "job/$job"
done
echo "study merged; fetch /study/report.html from the volume"
