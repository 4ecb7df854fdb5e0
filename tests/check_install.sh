#!/bin/sh
# The installed library is usable on its own: `meson install --destdir` into a temporary root,
# then (1) pkg-config gives flags that build every example against the installed headers only,
# (2) the examples run against the installed shared library, (3) the shared library exports
# exactly the LB_API functions declared in the installed headers (nm -D), nothing internal.
# usage: check_install.sh BUILD_DIR CC SHARED_DIR EXAMPLE.c...
set -u
build=$1 cc=$2 shared=$3
shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet > "$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; fail "meson install"; }
pc=$(find "$tmp/root" -name lowbit.pc | head -1)
[ -n "$pc" ] || fail "no lowbit.pc installed"
# The sysroot puts the file's own paths (and its dependencies', which the public headers do not
# need) under the temporary root.
export PKG_CONFIG_SYSROOT_DIR="$tmp/root"
export PKG_CONFIG_PATH="$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
cflags=$(pkg-config --cflags lowbit) || fail "pkg-config --cflags lowbit"
libs=$(pkg-config --libs lowbit) || fail "pkg-config --libs lowbit"
echo "pkg-config: $cflags $libs"
so=$(find "$tmp/root" -name 'liblowbit.so' | head -1)
[ -n "$so" ] || fail "no liblowbit.so installed"

# (1) and (2): outside the source tree, with only the installed headers and library.
mkdir "$tmp/src"
model=$shared/models/stories260K/stories260K.bin
for example in "$@"; do
    name=$(basename "$example" .c)
    cp "$example" "$tmp/src/"
    # shellcheck disable=SC2086
    (cd "$tmp/src" && "$cc" -std=c11 -Wall -Wextra -Werror $cflags "$name.c" -o "$name" $libs \
        -fopenmp -lm) || fail "example $name does not build against the installed API"
    echo "ok   $name builds against the installed headers"
done
if [ -f "$model" ] && [ -x "$tmp/src/list_tensors" ]; then
    LD_LIBRARY_PATH=$(dirname "$so") "$tmp/src/list_tensors" "$model" > "$tmp/list.out" ||
        fail "list_tensors against the installed library"
    grep -q 'token_embd.weight' "$tmp/list.out" || fail "list_tensors printed no tensor"
    echo "ok   list_tensors runs against the installed library"
fi

# (3): exported functions == LB_API declarations of the installed headers.
incdir=$(find "$tmp/root" -name lowbit.h | head -1)
incdir=$(dirname "$incdir")
find "$incdir" -name '*.h' -exec cat {} + | tr '\n' ' ' | sed 's/;/;\n/g' |
    grep 'LB_API' | grep -o 'lb_[a-z0-9_]*[[:space:]]*(' | tr -d '( \t' | sort -u > "$tmp/declared"
nm -D --defined-only "$so" | awk '$2 ~ /^[TDBR]$/ {print $3}' | sort -u > "$tmp/exported"
extra=$(comm -13 "$tmp/declared" "$tmp/exported")
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
[ -z "$extra" ] || fail "exported but not declared in an installed header: $(echo $extra)"
[ -z "$missing" ] || fail "declared LB_API but not exported: $(echo $missing)"
[ -s "$tmp/declared" ] || fail "no LB_API declaration found in the installed headers"
echo "ok   nm -D: $(wc -l < "$tmp/exported") exported functions, all in the installed headers"
