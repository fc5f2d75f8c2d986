#!/usr/bin/env bash
# Stops the cluster start-local-slurm.sh started: cancels every job first (so
# no job processes are orphaned), then the daemons it recorded.
set -uo pipefail
dir=${LOCAL_SLURM_DIR:-/tmp/local-slurm}
if command -v squeue >/dev/null && [[ -f "$dir/run/slurmctld.pid" ]]; then
  jobs=$(squeue -h -o %A 2>/dev/null | sort -u)
  if [[ -n "$jobs" ]]; then
    scancel $jobs
    for _ in $(seq 1 60); do [[ -z "$(squeue -h -o %A 2>/dev/null)" ]] && break; sleep 0.5; done
  fi
fi
stop() {  # pid file
  [[ -f "$1" ]] || return 0
  local pid
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}
stop "$dir/run/slurmd.pid"
stop "$dir/run/slurmctld.pid"
if [[ -f "$dir/run/munged.ours" ]]; then
  stop /run/munge/munged.pid
  rm -f "$dir/run/munged.ours"
fi
exit 0
