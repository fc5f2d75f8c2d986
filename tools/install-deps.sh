#!/usr/bin/env bash
# Installs the Debian packages dptrain needs to build, test and fetch MNIST.
# Idempotent: packages already present are left alone, and apt-get is skipped
# entirely when nothing is missing. Run as root (or with sudo).
set -euo pipefail

packages=(
  g++ make cmake pkg-config
  openmpi-bin libopenmpi-dev
  libhdf5-openmpi-dev hdf5-tools
  libopenblas-dev
  libboost-program-options-dev
  libgtest-dev
  zlib1g-dev
  libpng-dev
  libssl-dev
  ca-certificates
)
# Optional extras, asked for by name: DPTRAIN_EXTRA_PACKAGES="npm python3-h5py"
read -r -a extra <<< "${DPTRAIN_EXTRA_PACKAGES:-}"
packages+=("${extra[@]}")

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
echo "install-deps: installing ${missing[*]}"
apt_opts=(-o DPkg::Lock::Timeout=600)
"${sudo[@]}" apt-get "${apt_opts[@]}" update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get "${apt_opts[@]}" install -y -qq \
  --no-install-recommends "${missing[@]}"
