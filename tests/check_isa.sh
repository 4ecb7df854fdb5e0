#!/bin/sh
# The default build runs on any x86-64: outside the per-ISA kernel objects (kernels/x86, compiled
# with their own -m flags and reached only through run-time dispatch), no object of the library
# or the CLI may contain AVX/AVX2 (ymm) or AVX-512 (zmm, mask registers) instructions.
# usage: check_isa.sh OBJDUMP BUILD_DIR
set -u
objdump=$1 build=$2
vector='%[yz]mm[0-9]|%k[1-7]\b'
checked=0 failed=0
for obj in "$build"/liblowbit.so.p/*.o "$build"/cli/lowbit.p/*.o; do
    [ -f "$obj" ] || continue
    checked=$((checked + 1))
    hits=$("$objdump" -d --no-show-raw-insn "$obj" | grep -cE "$vector")
    if [ "$hits" -ne 0 ]; then
        echo "FAIL: $obj has $hits AVX/AVX-512 instructions, e.g.:"
        "$objdump" -d --no-show-raw-insn "$obj" | grep -E "$vector" | head -3
        failed=$((failed + 1))
    fi
done
# The probe must see what it looks for: the AVX2 kernels use ymm registers.
avx2=$(ls "$build"/kernels/liblowbit_avx2.a.p/*.o 2>/dev/null | head -1)
if [ -z "$avx2" ] || [ "$("$objdump" -d "$avx2" | grep -cE "$vector")" -eq 0 ]; then
    echo "FAIL: no ymm instruction found in the AVX2 kernel objects: the probe is broken"
    failed=$((failed + 1))
fi
echo "isa: $checked generic objects checked, $failed failed"
[ "$checked" -gt 0 ] && [ "$failed" -eq 0 ]
