#!/usr/bin/env bash
# Makes the example pictures in README.md (tools/figures/*.png) from runs of
# jobs/configs/{reference,tweaked,wide}.ini on 2 ranks (trained here if their
# run dirs do not exist yet), with tools/plot.py.
#   tools/make-figures.sh [RUNS_FOLDER (default runs/figures)]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
runs=${1:-runs/figures}
out=tools/figures
mkdir -p "$runs" "$out"
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
for config in reference tweaked wide; do
  [[ -e "$runs/$config/checkpoints/latest.h5" ]] && continue
  mpirun -np 2 build/dptrain train --config "jobs/configs/$config.ini" --data data/mnist.h5 \
    --run-dir "$runs/$config" -q
done
build/dptrain eval --checkpoint "$runs/wide/checkpoints/latest.h5" --json > "$runs/wide-eval.json"
plot=(/usr/bin/python3 tools/plot.py)
"${plot[@]}" curves "$runs/reference" "$runs/tweaked" "$runs/wide" --out "$out/curves.png"
"${plot[@]}" confusion "$runs/wide-eval.json" --out "$out/confusion.png"
"${plot[@]}" weights "$runs/reference/checkpoints/latest.h5" --out "$out/weights.png"
"${plot[@]}" misclassified "$runs/reference/checkpoints/latest.h5" data/mnist.h5 --count 24 --out "$out/misclassified.png"
build/dptrain eval --checkpoint "$runs/reference/checkpoints/latest.h5" --noise 10000 | tail -14
