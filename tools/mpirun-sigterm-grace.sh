#!/bin/bash
# How long Open MPI's mpirun lets its ranks live after it gets SIGTERM (as
# from scancel), for a given odls_base_sigkill_timeout: the README's figures
# for train.sbatch's STOP_GRACE_SECONDS come from this.
#
#   bash tools/mpirun-sigterm-grace.sh [TIMEOUT_SECONDS]    # default: Open MPI's own (1)
#
# Two ranks that note SIGTERM and keep running; mpirun gets SIGTERM after 2 s.
# Prints the seconds from that signal to each rank's SIGTERM and to mpirun's exit.
set -uo pipefail
log=$(mktemp)
rank=$(mktemp)
trap 'rm -f "$log" "$rank"' EXIT
cat > "$rank" <<'RANK'
trap 'echo "rank $OMPI_COMM_WORLD_RANK got SIGTERM $(date +%s.%N)" >> "$GRACE_LOG"' TERM
while true; do sleep 0.1; done
RANK
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
[[ $# -ge 1 ]] && export OMPI_MCA_odls_base_sigkill_timeout=$1
GRACE_LOG=$log mpirun -np 2 -x GRACE_LOG bash "$rank" > /dev/null 2>&1 &
mpirun_pid=$!
sleep 2
sent=$(date +%s.%N)
kill -TERM "$mpirun_pid"
wait "$mpirun_pid"
code=$?
ended=$(date +%s.%N)
echo "odls_base_sigkill_timeout: ${1:-default}"
while read -r _ who _ _ at; do
  awk -v who="$who" -v a="$at" -v b="$sent" 'BEGIN { printf "rank %s got SIGTERM %.1f s after mpirun did\n", who, a - b }'
done < "$log"
awk -v a="$ended" -v b="$sent" -v code="$code" \
  'BEGIN { printf "mpirun exited %.1f s after its SIGTERM (exit %d): the ranks were SIGKILLed then\n", a - b, code }'
