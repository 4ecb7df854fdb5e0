#!/bin/sh
# lowbit's test command (README and .ci/run): install dependencies, build with warnings as
# errors, run every meson test; then again under AddressSanitizer and UBSan; then every libFuzzer
# target for a short bounded time.
set -eu
cd "$(dirname "$0")/.."
sh tests/install-deps.sh

# Independent oracles from PyPI: `gguf` (llama.cpp's own reader) for our GGUF files and
# Google's `sentencepiece` for the tokenizer.
venv=.venv-tests
if ! "$venv/bin/python3" -c 'import gguf, sentencepiece' 2>/dev/null; then
    python3 -m venv --system-site-packages "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'gguf==0.17.1' \
        'sentencepiece==0.2.3'
fi
export LB_REQUIRE_ORACLE=1
export LB_ORACLE_PYTHON="$PWD/$venv/bin/python3"

setup() { # build dir, options...
    dir=$1
    shift
    if [ -d "$dir" ]; then
        meson setup --reconfigure "$dir" "$@"
    else
        meson setup "$dir" "$@"
    fi
}

# The default build is what a user would ship: generic code for any x86-64, SIMD chosen at
# run time (isa_portable checks the objects).
setup build-ci --werror
meson test -C build-ci --print-errorlogs

# The same suites with the kernels limited to AVX2 and to plain C, as on an older CPU (the
# format and fuzz-replay suites do not depend on the ISA).
for level in cpuavx2 cpuc; do
    meson test -C build-ci --setup "$level" --print-errorlogs --suite unit --suite kernels \
        --suite model --suite quant --suite examples
done

# GCC and clang builds of the same source give byte-identical quantized files and logits.
if [ ! -d build-ci-clang ]; then
    CC=clang meson setup build-ci-clang --werror
fi
ninja -C build-ci-clang cli/lowbit
sh tests/check_compilers.sh build-ci/cli/lowbit build-ci-clang/cli/lowbit ../shared ||
    [ $? -eq 77 ]

setup build-ci-asan --werror -Db_sanitize=address,undefined -Db_lundef=false
meson test -C build-ci-asan --print-errorlogs --timeout-multiplier 3

# libFuzzer (clang): 20 s per target, seeded with the corpora and real files from ../shared;
# a crash fails CI. The 10-minute campaigns are in docs/RELIABILITY.md.
if [ ! -d build-ci-fuzz ]; then
    CC=clang meson setup build-ci-fuzz --werror -Dfuzz=true -Db_lundef=false
fi
fuzzers=""
for source in tests/fuzz/fuzz_*.c; do
    fuzzers="$fuzzers tests/fuzz/$(basename "$source" .c)"
done
# shellcheck disable=SC2086
ninja -C build-ci-fuzz $fuzzers
sh tests/fuzz/campaign.sh build-ci-fuzz build-ci/cli/lowbit 20
