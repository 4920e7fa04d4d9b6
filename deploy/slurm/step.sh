#!/bin/sh
# One step of a study queued by submit.sh: runs the command it was queued
# with, arguments exactly as given (sbatch passes them through).
echo "$(date -u '+%F %T') on $(hostname): $*" >&2
exec "$@"
