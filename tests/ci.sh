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

# -Dnative=false: CI builds what a user would ship (SIMD is chosen at run time anyway).
setup build-ci --werror -Dnative=false
meson test -C build-ci --print-errorlogs

setup build-ci-asan --werror -Dnative=false -Db_sanitize=address,undefined -Db_lundef=false
meson test -C build-ci-asan --print-errorlogs --timeout-multiplier 3

# libFuzzer (clang): 20 s per target, seeded with the corpora and real files from ../shared;
# a crash fails CI. The 10-minute campaigns are in docs/RELIABILITY.md.
if [ ! -d build-ci-fuzz ]; then
    CC=clang meson setup build-ci-fuzz --werror -Dnative=false -Dfuzz=true -Db_lundef=false
fi
fuzzers=""
for source in tests/fuzz/fuzz_*.c; do
    fuzzers="$fuzzers tests/fuzz/$(basename "$source" .c)"
done
# shellcheck disable=SC2086
ninja -C build-ci-fuzz $fuzzers
sh tests/fuzz/campaign.sh build-ci-fuzz build-ci/cli/lowbit 20
