#!/bin/sh
# Runs every libFuzzer target for a bounded time, seeded with the checked-in corpus, the
# reader's malformed corpus and real files (../shared's checkpoints and tokenizers, and files
# lowbit writes from them), then prints one summary line per target. Exits non-zero when a
# target crashed, leaked or broke an invariant (the input is kept as <work>/<target>-crash-*).
#
# usage: tests/fuzz/campaign.sh FUZZ_BUILD_DIR LOWBIT SECONDS [TARGET...]
#   FUZZ_BUILD_DIR  a build configured with CC=clang -Dfuzz=true (see tests/fuzz/README.md)
#   LOWBIT          a lowbit binary, to write the real seed files (GGUF, imatrix, logits)
#   SECONDS         time per target
# Environment: LB_SHARED_DIR (default ../shared), LB_FUZZ_WORK (scratch, default a temp dir
# that is removed afterwards), LB_ORACLE_PYTHON (python3 with numpy, for the HF seed).
set -eu
cd "$(dirname "$0")/../.."
[ $# -ge 3 ] || { sed -n '7,12p' "$0"; exit 2; }
build=$1
lowbit=$2
seconds=$3
shift 3
targets=$*
if [ -z "$targets" ]; then
    for source in tests/fuzz/fuzz_*.c; do
        name=$(basename "$source" .c)
        targets="$targets ${name#fuzz_}"
    done
fi
shared=${LB_SHARED_DIR:-../shared}
python=${LB_ORACLE_PYTHON:-python3}
work=${LB_FUZZ_WORK:-}
if [ -z "$work" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"

# Real seeds, when ../shared is there: each reader sees the files it exists for.
real=$work/real
mkdir -p "$real/gguf" "$real/safetensors" "$real/llama2c" "$real/tokenizer_bin" \
    "$real/hf_json" "$real/imatrix" "$real/spm_model" "$real/logprob" "$real/model"
model=$shared/models/stories260K/stories260K.bin
tok=$shared/models/stories260K/tok512.bin
spm=$shared/models/llama2-tokenizer/tokenizer.model
calib=$shared/text/wiki.test.raw
if [ -f "$model" ] && [ -f "$tok" ]; then
    cp "$model" "$real/llama2c/"
    cp "$tok" "$real/tokenizer_bin/"
    "$lowbit" convert "$model" "$real/gguf/stories260K-f16.gguf" --type f16 \
        --tokenizer "$tok" >/dev/null
    "$lowbit" quantize "$model" "$real/gguf/stories260K-q4_0.gguf" --type Q4_0 \
        --tokenizer "$tok" >/dev/null
    cp "$real/gguf/stories260K-f16.gguf" "$real/gguf/stories260K-q4_0.gguf" "$real/model/"
    if [ -f "$calib" ]; then
        head -c 200000 "$calib" >"$work/calib.txt"
        "$lowbit" imatrix "$model" --tokenizer "$tok" --calib "$work/calib.txt" \
            -o "$real/imatrix/stories260K.imatrix.gguf" >/dev/null
        "$lowbit" imatrix "$model" --tokenizer "$tok" --calib "$work/calib.txt" \
            -o "$real/imatrix/stories260K.imatrix.dat" >/dev/null
        # A real --save-logits file of 4 windows of 32 tokens (64 KB).
        "$lowbit" eval "$model" --tokenizer "$tok" --text "$work/calib.txt" --ctx 32 \
            --chunks 4 --save-logits "$real/logprob/stories260K.logits" >/dev/null
    fi
    if "$python" -c 'import numpy' 2>/dev/null; then
        "$python" tests/make_hf_checkpoint.py "$work/hf" --dtype bf16 --model "$model" >/dev/null
        cp "$work/hf/model.safetensors" "$real/safetensors/stories260K-bf16.safetensors"
        # fuzz_hf_json: an even first byte selects config.json, an odd one tokenizer.json.
        for f in "$work"/hf/*.json; do
            name=$(basename "$f" .json)
            case $name in
            config) sel='\000' ;;
            tokenizer) sel='\001' ;;
            *) continue ;;
            esac
            { printf "$sel"; cat "$f"; } >"$real/hf_json/$name.json"
        done
    fi
fi
[ -f "$spm" ] && cp "$spm" "$real/spm_model/"

status=0
printf '%-14s %8s %12s %10s %6s %6s %s\n' target seconds execs exec/s cov ft result
for t in $targets; do
    case $t in
    gguf) dict=gguf malformed=gguf ;;
    safetensors) dict=safetensors malformed=safetensors ;;
    llama2c) dict=llama2c malformed=llama2c ;;
    tokenizer_bin) dict=llama2c malformed=tokenizer ;;
    hf_json) dict=json malformed=hf ;;
    imatrix) dict=gguf malformed=imatrix ;;
    logprob) dict=none malformed=logprob ;;
    spm_model) dict=spm malformed=spm ;;
    model) dict=gguf malformed=gguf ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
    esac
    exe=$build/tests/fuzz/fuzz_$t
    [ -x "$exe" ] || { echo "$exe not built (CC=clang, -Dfuzz=true)" >&2; exit 2; }
    mkdir -p "$work/$t-corpus"
    dirs="$work/$t-corpus tests/fuzz/corpus/$t $real/$t"
    [ -d "tests/malformed/$malformed" ] && dirs="$dirs tests/malformed/$malformed"
    dict_arg=""
    [ -f "tests/fuzz/$dict.dict" ] && dict_arg="-dict=tests/fuzz/$dict.dict"
    log=$work/$t.log
    # Real checkpoints are up to ~1 MB; inputs that long are kept but mutated less often.
    # shellcheck disable=SC2086
    if "$exe" -max_total_time="$seconds" -max_len=1100000 -len_control=100 -timeout=25 \
        -rss_limit_mb=4096 -print_final_stats=1 $dict_arg -artifact_prefix="$work/$t-" \
        $dirs >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see $log)"
        status=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    printf '%-14s %8s %12s %10s %6s %6s %s\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" \
        "${cov:-?}" "${ft:-?}" "$result"
    [ "$result" = ok ] || tail -40 "$log" >&2
done
exit $status
