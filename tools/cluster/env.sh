# source tools/cluster/env.sh: the settings to use the emulated cluster from a
# shell (or a test): Slurm's client commands find it, and mpirun talks over
# the bridge's subnet only and launches on the nodes through node-exec.sh.
_cluster_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$_cluster_here/common.sh"
export SLURM_CONF=$CLUSTER_DIR/etc/slurm.conf
export OMPI_MCA_plm_rsh_agent=$_cluster_here/node-exec.sh
export OMPI_MCA_btl=tcp,self
export OMPI_MCA_btl_tcp_if_include=$CLUSTER_SUBNET
export OMPI_MCA_oob_tcp_if_include=$CLUSTER_SUBNET
# Every node declares its own cores, so Open MPI cannot see that the nodes
# share this machine's: without yielding, ranks busy-polling in a collective
# starve each other for whole scheduler ticks (71 ms a step instead of 2).
export OMPI_MCA_mpi_yield_when_idle=1
unset _cluster_here
