#!/usr/bin/env bash
# Make .venv with the exact pinned Python stack, the Debian packages the recipe needs, and
# KenLM's programs. Re-running is fast: each part is skipped when already done.
#   bash tools/setup.sh [CONFIG] [test]   (make setup passes the recipe's config; make test adds
#                                           `test`: the test suite's Debian packages too)
# The built-in recipe needs the TTS voices and text corpora; every recipe needs KenLM's build
# dependencies (for lmplz/build_binary) and gains from tcmalloc (asr.utils.allocator_env); the
# tests also drive Chromium (chromium, chromium-driver) for asr serve's page. As root the
# missing ones are installed with apt-get; otherwise the exact command is printed and setup
# carries on with the rest.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
CONFIG=${1:-recipes/builtin/config.yaml}
FOR_TESTS=${2:-}
BUILTIN_PACKAGES="espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts \
sox fortunes wordnet-base bible-kjv dict-gcide"
KENLM_PACKAGES="cmake g++ libboost-program-options-dev libboost-system-dev libboost-thread-dev \
libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev"  # asr/decoding/kenlm_tools.py BUILD_NEEDS
ALLOCATOR_PACKAGES="libtcmalloc-minimal4"  # train.allocator=auto: 2x the CPU training speed
TEST_PACKAGES="chromium chromium-driver"  # make test: the asr serve page in a headless browser

stamp=.venv/.setup-$(cat requirements/lock.txt pyproject.toml | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
    [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade "pip>=24"
    .venv/bin/python -m pip install -q -r requirements/lock.txt
    .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
    rm -f .venv/.setup-*
    touch "$stamp"
    echo "setup: .venv ready ($(.venv/bin/python -c 'import torch, torchaudio; print("torch", torch.__version__, "torchaudio", torchaudio.__version__)'))"
fi
# the recipe's corpus and units, from its loaded config (base: variants included): only the
# built-in corpus needs the TTS voices and text corpora; phone units need flite's t2p (G2P)
if ! recipe=$(.venv/bin/python -c 'import sys; from asr.config import load_config
d = load_config(sys.argv[1]).data; print(d.corpus, d.units)' "$CONFIG" 2>&1); then
    echo "setup: cannot read data.corpus of $CONFIG (${recipe##*$'\n'}): counting the built-in corpus's packages in" >&2
    recipe="builtin char"
fi
needed="$KENLM_PACKAGES $ALLOCATOR_PACKAGES"
[ "$FOR_TESTS" = test ] && needed="$needed $TEST_PACKAGES"
case "$recipe" in
    builtin\ *) needed="$BUILTIN_PACKAGES $needed" ;;
    *\ phone_lexicon) needed="flite $needed" ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "setup: not a Debian system: make sure the equivalents of these are installed:" >&2
    echo "setup:   $needed" >&2
else
    missing=""
    for pkg in $needed; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
    done
    if [ -n "$missing" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing Debian packages:$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    elif [ -n "$missing" ]; then
        echo "setup: these Debian packages are missing:$missing" >&2
        echo "setup: install them with:  sudo apt-get install -y$missing" >&2
        echo "setup: carrying on without them (the built-in corpus needs the voices; an LM needs KenLM's build tools; without tcmalloc CPU training is slower; without chromium the browser tests of asr serve are skipped)" >&2
    fi
fi

bash tools/build_kenlm.sh || echo "setup: no KenLM tools yet: \`asr lm build\` needs them (see above)" >&2
