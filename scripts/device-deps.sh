#!/usr/bin/env bash
# Gathers what scripts/device-check.sh needs on a GPU machine that has a CUDA PyTorch but no apt:
# the header-only dependencies the pip wheel lacks (nlohmann-json, CLI11, zlib's headers, Gloo's
# headers), unpacked from Debian's packages, and the data (Fashion-MNIST, the fortunes corpus).
# Run here (root, apt); carry the result to the device machine. Usage: scripts/device-deps.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-.devdeps}")
mkdir -p "$out/debs" "$out/data"
(cd "$out/debs" && apt-get download nlohmann-json3-dev libcli11-dev zlib1g-dev libgloo-dev >/dev/null)
for deb in "$out"/debs/*.deb; do dpkg -x "$deb" "$out"; done
rm -rf "$out/debs" "$out/usr/share/doc" "$out/usr/share/man"
rm -rf "$out/data/fashion-mnist" "$out/data/fortunes"
cp -r /usr/share/datasets/fashion-mnist "$out/data/fashion-mnist"
cp -rL /usr/share/games/fortunes "$out/data/fortunes"
du -sh "$out"
