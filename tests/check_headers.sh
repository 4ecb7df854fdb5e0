#!/bin/sh
# Every public header compiles on its own (and twice in a row): usage CC SOURCE_DIR [CFLAGS...]
set -u
cc=$1 src=$2
shift 2
cd "$src" || exit 1
failed=0 count=0
for header in lowbit.h common/*.h linalg/*.h formats/*.h kernels/*.h model/*.h quant/*.h; do
    [ -f "$header" ] || continue
    case "$header" in *_internal.h) continue ;; esac
    count=$((count + 1))
    if ! printf '#include "%s"\n#include "%s"\nint lb_header_check(void);\n' "$header" "$header" |
        "$cc" -std=c11 -Wall -Wextra -Werror -Wmissing-prototypes -fsyntax-only -I. "$@" -x c -; then
        echo "FAIL: $header does not compile on its own"
        failed=$((failed + 1))
    fi
done
echo "headers: $count checked, $failed failed"
[ "$failed" -eq 0 ]
