#!/usr/bin/env bash
# Build KenLM's `lmplz` and `build_binary` (no wheel ships them) from the kenlm source package on
# PyPI into .venv/kenlm/bin/. Run once by tools/setup.sh; a no-op when both programs exist.
# Needs cmake, a C++ compiler and Debian's libboost-{program-options,system,thread,test}-dev,
# zlib1g-dev, libbz2-dev, liblzma-dev (tools/setup.sh installs them).
#   KENLM_PREFIX  where bin/lmplz and bin/build_binary go (default .venv/kenlm)
#   KENLM_JOBS    parallel compile jobs (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.3.0
SHA256=c4628bb9fb63c8a6f9240035b8b037385cfc404cb72e933cf48878291edac1e8
PREFIX=${KENLM_PREFIX:-.venv/kenlm}
JOBS=${KENLM_JOBS:-2}

if [ -x "$PREFIX/bin/lmplz" ] && [ -x "$PREFIX/bin/build_binary" ]; then
    exit 0
fi
start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "kenlm: fetching the kenlm $VERSION source package from PyPI"
# --no-build-isolation: pip would otherwise compile cmake itself from source just to read metadata
.venv/bin/python -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
    -d "$work" "kenlm==$VERSION"
echo "$SHA256  $work/kenlm-$VERSION.tar.gz" | sha256sum -c --quiet -
tar xzf "$work/kenlm-$VERSION.tar.gz" -C "$work"
src="$work/kenlm-$VERSION"
[ -f "$src/lm/builder/lmplz_main.cc" ] || { echo "kenlm: $VERSION sdist lacks lm/builder" >&2; exit 1; }
echo "kenlm: building lmplz and build_binary with $JOBS jobs"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DKENLM_MAX_ORDER=6 \
    -DCOMPILE_TESTS=OFF -DENABLE_PYTHON=OFF >"$work/cmake.log" 2>&1 \
    || { cat "$work/cmake.log" >&2; exit 1; }
cmake --build "$work/build" --target lmplz build_binary -j "$JOBS" >"$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log" >&2; exit 1; }
mkdir -p "$PREFIX/bin"
install -m 755 "$work/build/bin/lmplz" "$work/build/bin/build_binary" "$PREFIX/bin/"
echo "kenlm: $PREFIX/bin/{lmplz,build_binary} built in $(( $(date +%s) - start )) s"
