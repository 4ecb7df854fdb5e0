#!/bin/sh
# Source coverage of each reader by its fuzz corpus: replays what a campaign kept (campaign.sh
# with LB_FUZZ_WORK=WORK), the seeds, the malformed corpus and the real files through the
# replay drivers of a clang build with coverage mapping, and prints llvm-cov's summary of the
# reader's own source files (regions, functions, lines, branches).
#
# usage: tests/fuzz/coverage.sh COVERAGE_BUILD_DIR WORK [TARGET...]
#   COVERAGE_BUILD_DIR  CC=clang meson setup DIR -Dc_args='-fprofile-instr-generate
#                       -fcoverage-mapping' -Dc_link_args=-fprofile-instr-generate
#   WORK                the LB_FUZZ_WORK directory of a campaign
set -eu
cd "$(dirname "$0")/../.."
[ $# -ge 2 ] || { sed -n '7,11p' "$0"; exit 2; }
build=$1
work=$2
shift 2
targets=$*
if [ -z "$targets" ]; then
    for source in tests/fuzz/fuzz_*.c; do
        name=$(basename "$source" .c)
        targets="$targets ${name#fuzz_}"
    done
fi
profiles=$(mktemp -d)
trap 'rm -rf "$profiles"' EXIT

printf '%-14s %-28s %8s %8s %8s %8s\n' target sources regions functions lines branches
for t in $targets; do
    case $t in
    gguf) malformed=gguf sources="formats/gguf_read.c" ;;
    safetensors) malformed=safetensors sources="formats/safetensors.c" ;;
    llama2c) malformed=llama2c sources="formats/llama2c.c" ;;
    tokenizer_bin) malformed=tokenizer sources="formats/llama2c.c" ;;
    hf_json) malformed=hf sources="formats/hf.c" ;;
    imatrix) malformed=imatrix sources="formats/imatrix_file.c" ;;
    logprob) malformed=logprob sources="formats/logprob_file.c" ;;
    spm_model) malformed=spm sources="formats/spm_model.c" ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
    esac
    exe=$build/tests/fuzz/replay_$t
    dirs=""
    for d in "$work/$t-corpus" "tests/fuzz/corpus/$t" "tests/malformed/$malformed" "$work/real/$t"; do
        [ -d "$d" ] && dirs="$dirs $d"
    done
    # shellcheck disable=SC2086
    LLVM_PROFILE_FILE="$profiles/$t-%p.profraw" "$exe" $dirs >/dev/null 2>&1
    llvm-profdata merge -o "$profiles/$t.profdata" "$profiles/$t"-*.profraw
    # shellcheck disable=SC2086
    llvm-cov report "$exe" -instr-profile="$profiles/$t.profdata" $sources |
        awk -v t="$t" -v s="$sources" '$1 == "TOTAL" || (NF > 10 && $1 ~ /\.c$/) { row = $0 }
            END { n = split(row, f, " ");
                  printf "%-14s %-28s %8s %8s %8s %8s\n", t, s, f[4], f[7], f[10], f[13] }'
done
