#!/usr/bin/env bash
# Installs everything tessera needs from Debian's packages. Idempotent: packages already present
# are skipped, and `apt-get update` runs at most once per call (only if something is missing).
#
#   scripts/install-deps.sh [--browser] [--bench]
#
# --browser also installs headless Chromium and a font (about 200 MB), which only the test of
# `tessera report` in a real browser needs (tests/report/ReportBrowserTest.cpp); scripts/test.sh
# passes it, the main job (scripts/demo.sh) does not. --bench installs what the comparisons in
# bench/ need besides tessera: Debian's PyTorch (the peer, run as /usr/bin/python3) and jq.
set -euo pipefail

browser=0
bench=0
for arg in "$@"; do
  case $arg in
    --browser) browser=1 ;;
    --bench) bench=1 ;;
    *) echo "install-deps: unknown argument '$arg' (--browser, --bench)" >&2; exit 2 ;;
  esac
done

packages=(
  g++ cmake ninja-build make
  libtorch-dev libgloo-dev libopenblas0-openmp   # libtorch, c10d's Gloo headers, a fast BLAS
  libdnnl-dev                                    # oneDNN's headers: the fp32 linear layers' kernel
  libgtest-dev zlib1g-dev libcli11-dev nlohmann-json3-dev
  dataset-fashion-mnist                          # the default data set
  fortunes                                       # the default text corpus (--data text)
  iproute2                                       # ip and tc: the namespaced hosts of the multi-host tests
)

if [ "$browser" = 1 ]; then
  packages+=(chromium-headless-shell fonts-dejavu-core)
fi
if [ "$bench" = 1 ]; then
  packages+=(python3-torch jq)
fi

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
