#!/bin/sh
# Cross-builds tests/checkkern.c with the kernel sources for AArch64 and runs it under qemu-user,
# so the NEON level is checked by the same checker, cases and contracts as the x86 levels
# (--bench is not built: it needs BLAS, which the target lacks here). Exit 77 = skipped (no
# cross compiler or qemu).
# Usage: checkkern_qemu.sh SOURCE_DIR BUILD_DIR [checkkern arguments...]
set -eu

if [ "$#" -lt 2 ]; then
    echo "usage: $0 SOURCE_DIR BUILD_DIR [checkkern arguments...]" >&2
    exit 2
fi
src=$1
build=$2
shift 2

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
exe=$build/checkkern
# The dispatch table (kernels/dsp.c) and lb_gemm are built as meson builds them for AArch64
# (LB_HAVE_ARM_KERNELS, OpenMP, the project's warnings), so checkkern sees exactly the kernels
# lb_kernels_dsp_init registers there.
"$cc" -std=c11 -O2 -static -fopenmp -pthread -D_GNU_SOURCE -DLB_HAVE_ARM_KERNELS \
    -DLB_CHECKKERN_NO_BENCH -fno-fast-math -Wall -Wextra -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -Wvla -Werror -I"$src" -o "$exe" \
    "$src/common/status.c" "$src/common/alloc.c" "$src/common/tensor.c" "$src/common/cpu.c" \
    "$src/common/rng.c" "$src/common/half.c" "$src/kernels/quants_legacy.c" \
    "$src/kernels/quants_iq4.c" \
    "$src/kernels/quants_k.c" "$src/kernels/quants_k_decode.c" "$src/kernels/registry.c" \
    "$src/kernels/dsp.c" "$src/kernels/gemm.c" "$src/kernels/arm/dot_neon.c" \
    "$src/tests/checkkern.c" "$src/tests/checkkern_inputs.c" -lm

exec "$qemu" "$exe" "$@"
