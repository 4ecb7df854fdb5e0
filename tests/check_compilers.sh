#!/bin/sh
# The same source gives the same bits whichever compiler builds it (-ffp-contract=off, no
# fast-math): quantized files and saved log-probabilities of a GCC and a clang build must be
# byte-identical. usage: check_compilers.sh LOWBIT_A LOWBIT_B SHARED_DIR
set -u
a=$1 b=$2 shared=$3
model=$shared/models/stories260K/stories260K.bin
smol=$(ls "$shared"/models/*/*.gguf 2>/dev/null | head -1)
text=$shared/text/tinystories-valid-sample.txt calib=$shared/text/wiki.test.raw
if [ ! -f "$model" ] || [ ! -f "$calib" ] || [ ! -f "$text" ]; then
    echo "skipped: $model or the texts missing"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
run_both() { # name, then lowbit arguments with @OUT@ for the output path
    name=$1
    shift
    for side in a b; do
        eval "bin=\$$side"
        out="$tmp/$side-$name"
        # shellcheck disable=SC2046
        if ! "$bin" $(printf '%s\n' "$@" | sed "s#@OUT@#$out#") > "$tmp/$side.log" 2>&1; then
            echo "FAIL: $name with $bin:"
            cat "$tmp/$side.log"
            failed=$((failed + 1))
            return
        fi
    done
    if cmp -s "$tmp/a-$name" "$tmp/b-$name"; then
        echo "ok   $name: identical bytes"
    else
        echo "FAIL: $name differs between the two builds"
        failed=$((failed + 1))
    fi
}
run_both gptq-Q4_K_M.gguf quantize "$model" @OUT@ --type Q4_K_M --calib "$calib" --seqlen 128 --nsamples 16
run_both rtn-Q4_0.gguf quantize "$model" @OUT@ --type Q4_0
run_both gptq-Q2_K.gguf quantize "$model" @OUT@ --type Q2_K --calib "$calib" --seqlen 128 --nsamples 8
run_both f32.logits eval "$model" --text "$text" --ctx 256 --save-logits @OUT@
if [ -n "$smol" ]; then
    run_both packed.logits eval "$smol" --text "$calib" --ctx 256 --chunks 2 --save-logits @OUT@
fi
[ "$failed" -eq 0 ]
