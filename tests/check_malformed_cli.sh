#!/bin/sh
# Every file of the malformed corpus makes `lowbit inspect` exit 3 with one line on stderr that
# names the file and a byte offset, and nothing on stdout. usage: LOWBIT SOURCE_DIR SHARED_DIR
set -u
lowbit=$1 src=$2 shared=$3
failed=0 count=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check() { # description, expected path in message, command...
    what=$1 named=$2
    shift 2
    count=$((count + 1))
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    lines=$(wc -l <"$tmp/err")
    if [ "$rc" -ne 3 ] || [ "$lines" -ne 1 ] || [ -s "$tmp/out" ] ||
        ! grep -qF -- "$named" "$tmp/err" || ! grep -q "offset" "$tmp/err"; then
        echo "FAIL ($what): exit $rc, $lines stderr line(s):"
        cat "$tmp/err"
        failed=$((failed + 1))
    fi
}
for dir in gguf safetensors llama2c; do
    for f in "$src"/tests/malformed/$dir/*; do
        [ -f "$f" ] || continue
        check "$dir/$(basename "$f")" "$f" "$lowbit" inspect "$f"
    done
done
model="$shared/models/stories260K/stories260K.bin"
if [ -f "$model" ]; then
    for f in "$src"/tests/malformed/tokenizer/*; do
        [ -f "$f" ] || continue
        check "tokenizer/$(basename "$f")" "$f" "$lowbit" inspect --tokenizer "$f" "$model"
    done
fi
echo "malformed corpus: $count files, $failed failed"
[ "$count" -gt 0 ] && [ "$failed" -eq 0 ]
