#!/bin/sh
# Cross-builds tests/arm/check_neon.c for AArch64 and runs it under qemu; exit 77 = skipped.
# Usage: run_neon_tests.sh SOURCE_DIR BUILD_DIR
set -eu

if [ "$#" -ne 2 ]; then
    echo "usage: $0 SOURCE_DIR BUILD_DIR" >&2
    exit 2
fi
src=$1
build=$2

cc=${AARCH64_CC:-aarch64-linux-gnu-gcc}
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "SKIP: $cc not found (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)"
    exit 77
fi
qemu=
for candidate in qemu-aarch64-static qemu-aarch64; do
    if command -v "$candidate" >/dev/null 2>&1; then
        qemu=$candidate
        break
    fi
done
if [ -z "$qemu" ]; then
    echo "SKIP: neither qemu-aarch64-static nor qemu-aarch64 found (apt-get install qemu-user-static)"
    exit 77
fi

mkdir -p "$build"
exe=$build/check_neon
# The dispatch table (kernels/dsp.c) is built as meson builds it for AArch64, so the test sees
# exactly the kernels lb_kernels_dsp_init registers.
"$cc" -std=c11 -O2 -static -pthread -D_GNU_SOURCE -DLB_HAVE_ARM_KERNELS -Wall -Wextra -Werror \
    -I"$src" -o "$exe" \
    "$src/common/status.c" "$src/common/alloc.c" "$src/common/tensor.c" "$src/common/cpu.c" \
    "$src/kernels/quants_legacy.c" "$src/kernels/quants_k.c" "$src/kernels/quants_k_decode.c" \
    "$src/kernels/registry.c" \
    "$src/kernels/dsp.c" "$src/kernels/arm/dot_neon.c" "$src/tests/arm/check_neon.c" -lm

exec "$qemu" "$exe"
