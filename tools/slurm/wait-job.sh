#!/usr/bin/env bash
# wait-job.sh JOBID [TIMEOUT]: waits until the job, or every task of a job
# array, has ended (through any requeues), prints the final states, and exits
# with the largest exit code (1 for a job that failed with exit code 0, 124 on
# a timeout).
set -uo pipefail
job=$1
timeout=${2:-600}
deadline=$((SECONDS + timeout))
terminal='^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE)$'
while ((SECONDS < deadline)); do
  lines=$(scontrol -o show job "$job" 2>/dev/null) || lines=""
  if [[ -n "$lines" ]]; then
    finished=1
    worst=0
    summary=""
    while read -r line; do
      id=$(grep -o '^JobId=[0-9]*' <<<"$line" | cut -d= -f2)
      state=$(grep -o 'JobState=[A-Z_]*' <<<"$line" | cut -d= -f2)
      code=$(grep -o ' ExitCode=[0-9]*' <<<"$line" | head -1 | cut -d= -f2)
      if [[ ! "$state" =~ $terminal ]]; then finished=0; break; fi
      [[ "$state" != COMPLETED && "${code:-0}" -eq 0 ]] && code=1
      ((${code:-0} > worst)) && worst=${code:-0}
      summary+="job $id: $state ExitCode=${code:-?}"$'\n'
    done <<<"$lines"
    if ((finished)); then
      printf '%s' "$summary"
      exit "$worst"
    fi
  fi
  sleep 1
done
echo "job $job: not finished after ${timeout}s" >&2
exit 124
