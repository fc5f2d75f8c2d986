#!/usr/bin/env bash
# node-exec.sh NODE COMMAND...: runs COMMAND on an emulated node, in place of
# ssh: in the node's network namespace, under its host name, on its CPUs.
# mpirun uses it with --mca plm_rsh_agent tools/cluster/node-exec.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/common.sh"
node=$1
shift
ns=/run/netns/$(cluster_netns "$node")
[[ -e "$ns" ]] || { echo "node-exec: no emulated node $node (tools/cluster/start-cluster.sh)" >&2; exit 255; }
exec nsenter --net="$ns" unshare --uts taskset -c "$(cat "$CLUSTER_DIR/nodes/$node.cpus")" \
  bash -c "hostname $node && $*"
