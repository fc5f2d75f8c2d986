#!/usr/bin/env bash
# allreduce-timing.sh [DPTRAIN_FLOOR] [LAYERS]: the gradient allreduce of one
# step between two emulated nodes (dpnode1, dpnode2) against two local ranks
# over TCP on loopback, with the same launch settings, several times each.
# Needs the emulated cluster (start-cluster.sh with CLUSTER_SLURM=0 is enough).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
floor=${1:-$here/../../build/dptrain_floor}
layers=${2:-784,256,256,10}
source "$here/env.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
common=(--bind-to none --mca btl tcp,self --mca mpi_yield_when_idle 1)
allreduce_us() { "$@" "$floor" --layers "$layers" --batch-size 32 --repeats 101 | grep -o 'allreduce of [0-9]* bytes [0-9.]* us'; }
for round in 1 2 3; do
  echo "round $round  namespaces: $(allreduce_us mpirun -np 2 --host dpnode1,dpnode2 "${common[@]}")"
  echo "round $round  loopback:   $(allreduce_us env -u OMPI_MCA_btl_tcp_if_include -u OMPI_MCA_oob_tcp_if_include \
    mpirun -np 2 "${common[@]}")"
done
