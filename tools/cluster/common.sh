# Names and addresses of the emulated cluster, shared by its scripts (sourced).
# Distinctive on purpose: nothing else on a machine is called this.
CLUSTER_DIR=${CLUSTER_DIR:-/tmp/dptrain-cluster}
CLUSTER_NODES=${CLUSTER_NODES:-3}
CLUSTER_SUBNET_PREFIX=${CLUSTER_SUBNET_PREFIX:-10.213.47}  # a /24 on the bridge only
CLUSTER_BRIDGE=dptrainbr0
CLUSTER_BRIDGE_ADDR=$CLUSTER_SUBNET_PREFIX.1
CLUSTER_SUBNET=$CLUSTER_SUBNET_PREFIX.0/24
CLUSTER_SLURMCTLD_PORT=${CLUSTER_SLURMCTLD_PORT:-6917}
CLUSTER_SLURMD_PORT=${CLUSTER_SLURMD_PORT:-6918}
cluster_node_name() { echo "dpnode$1"; }          # 1-based
cluster_netns() { echo "dptrain-$1"; }            # by node name
cluster_node_addr() { echo "$CLUSTER_SUBNET_PREFIX.$((10 + $1))"; }
cluster_host_veth() { echo "dptrainv$1"; }
