"""Training throughput benchmark: `make bench-train`.

Runs a fixed number of updates of the recipe's model on its training data for each variant
below, each in a fresh process (so peak memory is its own), and prints audio-seconds per
wall-second, utterances per second and peak memory, with each optimisation switched off in
turn. Step times are medians over the timed updates (after warm-up updates).

    python -m asr.bench.train --config recipes/builtin/config.yaml [--steps 20] [section.key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

VARIANTS = [
    ("default (all on)", []),
    ("no length bucketing", ["train.bucketing=false"]),
    ("subsampling x2 (not x4)", ["model.subsample=2"]),
    ("no LayerNorm between RNNs", ["model.layer_norm=false"]),
    ("2 DataLoader workers", ["train.num_workers=2"]),
    ("bf16 autocast", ["train.amp=bf16"]),
    ("GRU instead of LSTM", ["model.rnn_type=gru"]),
    ("features on the fly (2 workers)", ["features.on_the_fly=true", "train.num_workers=2"]),
    ("features on the fly, on device", ["features.on_the_fly=true", "features.on_device=true",
                                        "train.num_workers=2"]),
    ("augmentation of augment.yaml (2 workers)", [
        "augment.speed_factors=[0.9,1.0,1.1]", "augment.pitch_prob=0.3", "augment.noise_prob=0.4",
        "augment.reverb_prob=0.2", "augment.telephone_prob=0.1", "augment.gain_min_db=-6",
        "augment.gain_max_db=6", "augment.specaugment=true", "train.num_workers=2"]),
]


def run_variant(config: str | None, overrides: list[str], steps: int, warmup: int) -> dict:
    """In this process: time `steps` updates after `warmup` ones; returns the figures."""
    from asr.config import load_config
    from asr.train import Trainer
    cfg = load_config(config, overrides + ["train.sortagrad=false", "train.checkpoint_every=0",
                                           "train.exp_dir=/tmp/asr-bench-run"])
    trainer = Trainer(cfg)
    trainer.model.train()
    times, audio, utts = [], [], []
    batches = iter(trainer.loader)
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        batch = next(batches)
        trainer.backward(batch, sync=True)
        trainer.update()
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            audio.append(trainer.batch_seconds(batch.feat_lens))
            utts.append(len(batch.ids))
    total = sum(times)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if trainer.device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"audio_s_per_s": sum(audio) / total, "utts_per_s": sum(utts) / total,
            "median_step_s": statistics.median(times), "peak_mem_mb": peak,
            "device": str(trainer.device), "threads": torch.get_num_threads()}


def machine() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores (torch {torch.__version__})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m asr.bench.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config")
    p.add_argument("--steps", type=int, default=20, help="timed updates per variant")
    p.add_argument("--warmup", type=int, default=3, help="untimed updates first")
    p.add_argument("--only", help="comma-separated variant numbers (1 = default)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(run_variant(args.config, args.overrides, args.steps, args.warmup)))
        return 0
    chosen = [VARIANTS[int(i) - 1] for i in args.only.split(",")] if args.only else VARIANTS
    rows = []
    for name, extra in chosen:
        cmd = [sys.executable, "-m", "asr.bench.train", "--worker", "--steps", str(args.steps),
               "--warmup", str(args.warmup)] + (["--config", args.config] if args.config else [])
        proc = subprocess.run(cmd + args.overrides + extra, capture_output=True, text=True)
        line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
        if proc.returncode != 0 or not line:
            print(f"{name}: failed\n{proc.stderr[-1500:]}", file=sys.stderr)
            continue
        rows.append((name, json.loads(line[0][7:])))
        print(f"{name}: {rows[-1][1]['audio_s_per_s']:.1f} audio-s/s", file=sys.stderr, flush=True)
    base = rows[0][1]["audio_s_per_s"] if rows else 1.0
    print(f"\nTraining throughput on {machine()}, {args.steps} timed updates per variant\n")
    print("| variant | audio-s/s | utt/s | median step s | vs default | peak memory MB |")
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['audio_s_per_s']:.1f} | {r['utts_per_s']:.1f} | {r['median_step_s']:.3f} | "
              f"{r['audio_s_per_s'] / base:.2f}x | {r['peak_mem_mb']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
