#!/usr/bin/env bash
# Removes what start-cluster.sh made: jobs, daemons, every process left in the
# node namespaces, the namespaces, veth pairs, bridge, /etc/hosts lines and
# the state folder. Safe to run at any time, also twice.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/common.sh"
conf="$CLUSTER_DIR/etc/slurm.conf"
if [[ -f "$CLUSTER_DIR/run/slurmctld.pid" ]] && command -v squeue >/dev/null; then
  export SLURM_CONF=$conf
  jobs=$(timeout 10 squeue -h -o %A 2>/dev/null | sort -u)
  if [[ -n "$jobs" ]]; then
    timeout 10 scancel $jobs
    for _ in $(seq 1 40); do [[ -z "$(timeout 5 squeue -h -o %A 2>/dev/null)" ]] && break; sleep 0.5; done
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
for pidfile in "$CLUSTER_DIR"/run/slurmd-*.pid; do stop "$pidfile"; done
stop "$CLUSTER_DIR/run/slurmctld.pid"
if [[ -f "$CLUSTER_DIR/run/munged.ours" ]]; then
  stop /run/munge/munged.pid
fi
for ((i = 1; i <= 64; i++)); do
  ns=$(cluster_netns "$(cluster_node_name "$i")")
  [[ -e "/run/netns/$ns" ]] || continue
  # Whatever still runs on the node (job steps, orted, ranks).
  pids=$(ip netns pids "$ns" 2>/dev/null)
  [[ -n "$pids" ]] && kill -9 $pids 2>/dev/null
  ip netns delete "$ns" 2>/dev/null
  ip link delete "$(cluster_host_veth "$i")" 2>/dev/null
done
ip link delete "$CLUSTER_BRIDGE" 2>/dev/null
sed -i '/^# dptrain-cluster begin$/,/^# dptrain-cluster end$/d' /etc/hosts
rm -rf "$CLUSTER_DIR"
exit 0
