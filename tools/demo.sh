#!/usr/bin/env bash
# `make demo`: every stage of a recipe in order, then each stage's minutes and what training
# did. With DEMO_MINUTES the whole demo fits that wall time: training (at most the recipe's
# train.max_minutes) ends DEMO_AFTER_TRAIN_S before the deadline, so a slow machine trains
# less, not longer.
#   bash tools/demo.sh CONFIG DEMO_MINUTES DEMO_AFTER_TRAIN_S "TUNE_ARGS" [section.key=value ...]
# TUNE_ARGS: asr tune-lm's options for the demo (a small grid on the real dev voices).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=$1 MINUTES=$2 AFTER_TRAIN_S=$3 TUNE_ARGS=$4
shift 4
ARGS="$*"
MAKE_CMD=(make --no-print-directory CONFIG="$CONFIG")
start=$(date +%s)
times=""

stage() {  # stage NAME TARGET... [ARGS=...]: run make targets, note their wall time
    local name=$1 t0
    shift
    t0=$(date +%s)
    "${MAKE_CMD[@]}" "$@"
    times+=$(printf '%-26s %3d min %02d s' "$name" $(( ($(date +%s) - t0) / 60 )) $(( ($(date +%s) - t0) % 60 )))$'\n'
}

stage "setup" setup
stage "data, features, LM" data features lm ARGS="$ARGS"
deadline=""
if [ -n "$MINUTES" ]; then
    deadline="train.finish_by=$(( start + MINUTES * 60 - AFTER_TRAIN_S ))"
fi
stage "train" train ARGS="$deadline $ARGS"
stage "tune-lm" tune-lm ARGS="$TUNE_ARGS $ARGS"
stage "evaluate" evaluate ARGS="$ARGS"

total=$(( $(date +%s) - start ))
echo
echo "demo stages ($CONFIG):"
printf '%s' "$times"
echo "demo finished in $(( total / 60 )) min $(( total % 60 )) s"
.venv/bin/python - "$CONFIG" $ARGS <<'PY'
import sys
from asr.checkpoint import load_checkpoint
from asr.config import load_config
from asr.run_folder import RunFolder
cfg = load_config(sys.argv[1], sys.argv[2:])
ckpt = load_checkpoint(RunFolder(cfg.train.exp_dir).checkpoint("last"))
print(f"training: {ckpt['step']} updates in {ckpt.get('train_seconds', 0) / 60:.1f} min "
      f"({cfg.train.exp_dir})")
PY
echo "CPU: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), $(nproc) cores," \
     "$(grep -qw avx512f /proc/cpuinfo && echo AVX-512 || echo 'AVX2, no AVX-512')"
