#!/usr/bin/env bash
# Build KenLM's `lmplz` and `build_binary` (no wheel ships them) into .venv/kenlm/bin/ with the
# package's own builder (`asr lm install-tools`, asr/decoding/kenlm_tools.py). Run by
# tools/setup.sh; a no-op when both programs exist. Without the system packages the build
# needs it prints the apt-get command and exits 1.
#   KENLM_PREFIX  where bin/lmplz and bin/build_binary go (default .venv/kenlm)
#   KENLM_JOBS    parallel compile jobs (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/asr lm install-tools --prefix "${KENLM_PREFIX:-.venv/kenlm}/bin" --jobs "${KENLM_JOBS:-2}"
