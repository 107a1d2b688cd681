#!/usr/bin/env bash
# Installs everything tessera needs from Debian's packages. Idempotent: packages already present
# are skipped, and `apt-get update` runs at most once per call (only if something is missing).
set -euo pipefail

packages=(
  g++ cmake ninja-build make
  libtorch-dev libgloo-dev libopenblas0-openmp   # libtorch, c10d's Gloo headers, a fast BLAS
  libgtest-dev zlib1g-dev libcli11-dev nlohmann-json3-dev
  dataset-fashion-mnist                          # the default data set
  fortunes                                       # the default text corpus (--data text)
  iproute2                                       # ip and tc: the namespaced hosts of the multi-host tests
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
