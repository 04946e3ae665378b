#!/bin/sh
# run.sh - Installs the runtime into a temporary prefix, builds
# tests/install/participant.c against it from outside the tree, once with
# pkg-config and once with find_package(saga), then runs test_install with the
# pkg-config build (the fleet, the participant, an order).
#
#   run.sh BUILD_DIR SOURCE_DIR LIBDIR TEST_INSTALL [EXTRA_CFLAGS]
#
# EXTRA_CFLAGS carries the sanitizer flags of an ASan build, which a program
# linking an instrumented libsaga.so needs too.
set -eu
build=$1 src=$2 libdir=$3 test_install=$4 extra=${5:-}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/saga-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
prefix=$tmp/prefix

step() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

step "install into $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "cmake --install"; }
for f in "$libdir/libsaga.so.0" "$libdir/pkgconfig/saga.pc" "$libdir/cmake/saga/sagaConfig.cmake" \
         "$libdir/cmake/saga/sagaConfigVersion.cmake" include/saga/saga.h include/saga/wire.h \
         include/saga/ctx.h share/saga/proto/envelope.proto share/saga/proto/events.proto; do
    [ -e "$prefix/$f" ] || fail "not installed: $f"
done
# The envelope's generated code is private to the library: no header, no symbol.
[ ! -e "$prefix/include/envelope.pb-c.h" ] || fail "generated envelope header installed"
if nm -D --defined-only "$prefix/$libdir/libsaga.so" | grep -q ' saga__'; then
    fail "libsaga.so exports internal saga__ symbols"
fi

step "pkg-config build"
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
flags=$(pkg-config --cflags --libs saga) || fail "pkg-config saga"
# shellcheck disable=SC2086 # flags are words by design
cc -std=c11 -Wall -Wextra -Werror $extra -o "$tmp/probe-pc" "$src/tests/install/participant.c" \
    $flags -Wl,-rpath,"$prefix/$libdir" || fail "cc with pkg-config"
ldd "$tmp/probe-pc" | grep -q "$prefix/$libdir/libsaga.so.0" || fail "probe-pc does not load the installed libsaga"

step "find_package build"
cmake -S "$src/tests/install" -B "$tmp/probe-build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_FLAGS="-Wall -Wextra -Werror $extra" -DCMAKE_EXE_LINKER_FLAGS="$extra" \
    >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; fail "configure with find_package"; }
cmake --build "$tmp/probe-build" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "build with find_package"; }
ldd "$tmp/probe-build/probe" | grep -q "$prefix/$libdir/libsaga.so.0" || fail "probe does not load the installed libsaga"
"$tmp/probe-build/probe" --help | grep -q "clears every order" || fail "probe --help"

step "run with the fleet"
"$test_install" "$tmp/probe-pc"
