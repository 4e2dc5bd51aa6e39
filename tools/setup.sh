#!/usr/bin/env bash
# Make .venv with the exact pinned Python stack and install the Debian packages the built-in
# corpus needs. Re-running is fast: each part is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DEBIAN_PACKAGES="espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts \
sox fortunes wordnet-base bible-kjv dict-gcide \
cmake g++ libboost-program-options-dev libboost-system-dev libboost-thread-dev libboost-test-dev \
zlib1g-dev libbz2-dev liblzma-dev"  # the last two lines: KenLM's lmplz/build_binary (tools/build_kenlm.sh)

missing=""
for pkg in $DEBIAN_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing Debian packages:$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
        echo "setup: these Debian packages are missing:$missing" >&2
        echo "setup: install them with:  sudo apt-get install -y$missing" >&2
        exit 1
    fi
fi

stamp=.venv/.setup-$(cat requirements/lock.txt pyproject.toml | sha1sum | cut -c1-12)
if [ -f "$stamp" ]; then
    exec bash tools/build_kenlm.sh  # a no-op once .venv/kenlm/bin/{lmplz,build_binary} exist
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade "pip>=24"
.venv/bin/python -m pip install -q -r requirements/lock.txt
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
rm -f .venv/.setup-*
touch "$stamp"
echo "setup: .venv ready ($(.venv/bin/python -c 'import torch, torchaudio; print("torch", torch.__version__, "torchaudio", torchaudio.__version__)'))"
bash tools/build_kenlm.sh
