#!/bin/sh
# Installs lowbit's build and test dependencies on Debian 12 (as root, or through sudo).
set -eu
packages="build-essential pkg-config meson ninja-build liblapacke-dev libopenblas-dev
  libjansson-dev libpcre2-dev python3 python3-numpy python3-venv clang libclang-rt-14-dev libomp-dev
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update
    # shellcheck disable=SC2086
    $sudo apt-get install -y --no-install-recommends $missing
fi
