#!/usr/bin/env bash
# The cost of --exact beside the default, side by side in one run: MID
# (784-256-256-10, batch 128) on 2 ranks, 3 epochs each, median epoch time of
# epochs 2-3, for the default (fast) mode, --exact with 8 shards and --exact
# with the default 240 shards.
#   tools/exact-cost.sh [--data data/mnist.h5] [--build build]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data="$root/data/mnist.h5"
build="$root/build"
while (($#)); do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "usage: tools/exact-cost.sh [--data FILE] [--build DIR]" >&2; exit 2 ;;
  esac
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mid=(--layers 784,256,256,10 --activation relu --output softmax --loss cross-entropy --lr 0.05 --momentum 0.9
     --lr-schedule cosine --batch-size 128 --epochs 3 -q)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for variant in "default" "--exact --shards 8" "--exact"; do
  extra=()
  [[ $variant == default ]] || read -r -a extra <<< "$variant"
  run_dir="$scratch/run-${#extra[@]}"
  mpirun -np 2 "$build/dptrain" train --data "$data" --run-dir "$run_dir" "${mid[@]}" "${extra[@]}" > /dev/null
  /usr/bin/python3 - "$run_dir/metrics.jsonl" "$variant" <<'PY'
import json, statistics, sys
metrics = [json.loads(line) for line in open(sys.argv[1])]
print(f"{sys.argv[2]:>20}: {statistics.median(m['epoch_seconds'] for m in metrics[1:]):.3f} s an epoch, "
      f"test accuracy {metrics[-1]['test_accuracy']:.4f}")
PY
done
