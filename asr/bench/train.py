"""Training throughput benchmark: `make bench-train`.

Runs a fixed number of updates of the recipe's model on its training data for each variant
below, each in a fresh process (so peak memory is its own), and prints audio-seconds per
wall-second, utterances per second and peak memory, with each optimisation switched off in
turn. Step times are medians over the timed updates (after warm-up updates).
Each row also gives the step's achieved GFLOP/s (asr.bench.step: FLOPs from the model's shapes)
and its share of this machine's fp32 GEMM peak, measured at the same thread count; a table
after it splits the first row's step into data, front-end, RNN, output, CTC, backward and
optimiser (CPU).

    python -m asr.bench.train --config recipes/builtin/config.yaml [--steps 20] [section.key=value ...]

With --shards DIR (written by `asr shard`, e.g. from the training split's feature store) it also
trains from the shards streamed sequentially (a row of the table), and times data loading alone
(batches + collate, no training) from the feature store and from the shards, with their ratio.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from asr.bench.step import PHASES, StepPhases, gemm_peak_gflops, train_gflop_per_audio_s

VARIANTS = [
    ("default (all on)", []),
    ("no length bucketing", ["train.bucketing=false"]),
    ("subsampling x2 (not x4)", ["model.subsample=2"]),
    ("no LayerNorm between RNNs", ["model.norm_type=none"]),
    ("2 DataLoader workers", ["train.num_workers=2"]),
    ("bf16 autocast", ["train.amp=bf16"]),
    ("GRU instead of LSTM", ["model.rnn_type=gru"]),
    ("glibc's allocator, 1 MB mmap threshold (flat memory)", ["train.allocator=glibc"]),
    ("glibc's allocator, its own threshold (memory grows)", [
        "train.allocator=glibc", "train.malloc_mmap_threshold_mb=0"]),
    ("features on the fly (2 workers)", ["features.on_the_fly=true", "train.num_workers=2"]),
    ("features on the fly, on device", ["features.on_the_fly=true", "features.on_device=true",
                                        "train.num_workers=2"]),
    ("augmentation of augment.yaml (2 workers)", [
        "augment.speed_factors=[0.9,1.0,1.1]", "augment.pitch_prob=0.3", "augment.noise_prob=0.4",
        "augment.reverb_prob=0.2", "augment.telephone_prob=0.1", "augment.gain_min_db=-6",
        "augment.gain_max_db=6", "augment.specaugment=true", "train.num_workers=2"]),
]


def endless_batches(trainer):
    """The trainer's own batches (feature store, on the fly, or data.train_shards streamed),
    epoch after epoch."""
    for epoch in itertools.count():
        trainer.data.set_epoch(epoch)
        yield from trainer.data


def bench_trainer(config: str | None, overrides: list[str], shards: str | None):
    """A Trainer of the recipe for benchmarking (reading the shard folder when given)."""
    from asr.config import load_config
    from asr.train import Trainer
    extra = [f"data.train_shards={shards}"] if shards else []
    cfg = load_config(config, overrides + extra + ["train.sortagrad=false", "train.checkpoint_every=0",
                                                   "train.exp_dir=/tmp/asr-bench-run"])
    return Trainer(cfg)


def run_loading(config: str | None, overrides: list[str], steps: int, warmup: int,
                shards: str | None) -> dict:
    """In this process: time `steps` batches of data loading + collate alone (after `warmup`),
    from the shard folder when given, else from the trainer's store; also the share of the
    padded batch frames that are real frames (what length bucketing buys)."""
    trainer = bench_trainer(config, overrides, shards)
    batches = endless_batches(trainer)
    audio, utts, real, padded = 0.0, 0, 0, 0
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        batch = next(batches)
        while batch is None:
            batch = next(batches)
        if i >= warmup:
            audio += trainer.batch_seconds(batch.feat_lens)
            utts += len(batch.ids)
            real += int(batch.feat_lens.sum())
            padded += int(batch.feat_lens.max()) * len(batch.ids)
    total = time.perf_counter() - t0
    return {"audio_s_per_s": audio / total, "utts_per_s": utts / total, "fill": real / padded,
            "num_workers": trainer.cfg.train.num_workers,
            "store": type(getattr(trainer.data.dataset, "store", trainer.data.dataset)).__name__}


def run_variant(config: str | None, overrides: list[str], steps: int, warmup: int,
                shards: str | None = None) -> dict:
    """In this process: time `steps` updates after `warmup` ones (batches streamed from the
    shard folder when given); returns the figures."""
    trainer = bench_trainer(config, overrides, shards)
    trainer.model.train()
    times, audio, utts = [], [], []
    batches = endless_batches(trainer)
    cpu = trainer.device.type == "cpu"
    phases = StepPhases(trainer) if cpu else None  # CUDA runs asynchronously: no phase times
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        if phases and i >= warmup:
            phases.start()
        batch = next(batches)
        while batch is None:  # every file of the batch unreadable
            batch = next(batches)
        trainer.backward(batch, sync=True)
        if phases and i >= warmup:
            phases.mark("backward")
        trainer.update()
        if phases and i >= warmup:
            phases.mark("optimiser")
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            audio.append(trainer.batch_seconds(batch.feat_lens))
            utts.append(len(batch.ids))
    total = sum(times)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if trainer.device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    gflop = train_gflop_per_audio_s(trainer.model, trainer.cfg.features.hop_ms)
    return {"audio_s_per_s": sum(audio) / total, "utts_per_s": sum(utts) / total,
            "median_step_s": statistics.median(times), "peak_mem_mb": peak,
            "device": str(trainer.device), "threads": torch.get_num_threads(),
            "gflop_per_audio_s": gflop, "gflops": gflop * sum(audio) / total,
            "phases_s": phases.medians() if phases else {},
            "gemm_peak_gflops": gemm_peak_gflops() if cpu else None}


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
    p.add_argument("--shards", metavar="DIR",
                   help="also train from, and time loading from, these shards (`asr shard`)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--load-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--from-shards", help=argparse.SUPPRESS)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    if args.worker:
        from asr.config import load_config
        from asr.utils import restart_with_allocator
        restart_with_allocator(load_config(args.config, args.overrides).train.allocator)  # as `asr train`
        run = run_loading if args.load_only else run_variant
        result = run(args.config, args.overrides, args.steps, args.warmup, args.from_shards)
        print("RESULT " + json.dumps(result))
        return 0
    chosen = [VARIANTS[int(i) - 1] for i in args.only.split(",")] if args.only else VARIANTS
    jobs = [(name, extra, []) for name, extra in chosen]
    if args.shards:
        jobs.append((f"sharded streaming ({Path(args.shards).name})", [], ["--from-shards", args.shards]))
    rows = []
    for name, extra, flags in jobs:
        result = run_worker(args, extra, flags)
        if result is None:
            print(f"{name}: failed", file=sys.stderr)
            continue
        rows.append((name, result))
        print(f"{name}: {rows[-1][1]['audio_s_per_s']:.1f} audio-s/s", file=sys.stderr, flush=True)
    base = rows[0][1]["audio_s_per_s"] if rows else 1.0
    print(f"\nTraining throughput on {machine()}, {args.steps} timed updates per variant\n")
    print("| variant | audio-s/s | utt/s | median step s | vs default | GFLOP/s | of GEMM peak | peak memory MB |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        share = f"{100 * r['gflops'] / r['gemm_peak_gflops']:.0f} %" if r.get("gemm_peak_gflops") else "n/a"
        print(f"| {name} | {r['audio_s_per_s']:.1f} | {r['utts_per_s']:.1f} | {r['median_step_s']:.3f} | "
              f"{r['audio_s_per_s'] / base:.2f}x | {r['gflops']:.0f} | {share} | {r['peak_mem_mb']:.0f} |")
    if rows:
        print_limit(rows[0][1])
    if args.shards:
        print_loading(args)
    return 0


def run_worker(args, extra: list[str], flags: list[str]) -> dict | None:
    """One measurement in a fresh process (so peak memory is its own); None when it failed."""
    cmd = [sys.executable, "-m", "asr.bench.train", "--worker", "--steps", str(args.steps),
           "--warmup", str(args.warmup), *flags] + (["--config", args.config] if args.config else [])
    proc = subprocess.run(cmd + args.overrides + extra, capture_output=True, text=True)
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        print(proc.stderr[-1500:], file=sys.stderr)
        return None
    return json.loads(line[0][7:])


def print_limit(r: dict) -> None:
    """The first variant's step against the machine: its GFLOP per audio-second, the fp32 GEMM
    peak at its thread count, and the median seconds of each phase of the step."""
    if not r.get("gemm_peak_gflops"):
        return
    print(f"\nThe first row's step: {r['gflop_per_audio_s']:.3f} GFLOP per audio-second (forward + "
          f"backward, from the model's shapes) at {r['gflops']:.0f} GFLOP/s = "
          f"{100 * r['gflops'] / r['gemm_peak_gflops']:.0f} % of this machine's fp32 GEMM peak "
          f"({r['gemm_peak_gflops']:.0f} GFLOP/s, 2048^3 products, {r['threads']} threads)\n")
    phases = r["phases_s"]
    total = sum(phases.values())
    print("| phase | median s | share |")
    print("|---|---|---|")
    for name in PHASES:
        print(f"| {name} | {phases[name]:.4f} | {100 * phases[name] / total:.0f} % |")


def print_loading(args) -> None:
    """Data loading + collate alone, from the feature store and from the shards, side by side."""
    kind = json.loads((Path(args.shards) / "shards.json").read_text())["kind"]
    many = ["--steps", str(max(args.steps, 200))]  # loading is fast: more batches, steadier
    store = run_worker(args, [], ["--load-only", *many])
    shards = run_worker(args, [], ["--load-only", *many, "--from-shards", args.shards])
    if store is None or shards is None:
        print("data loading: failed", file=sys.stderr)
        return
    print(f"\nData loading + collate alone ({max(args.steps, 200)} batches, "
          f"{store['num_workers']} DataLoader workers; real frames: share of the padded batch)\n")
    print("| source | audio-s/s | utt/s | vs the store | real frames |")
    print("|---|---|---|---|---|")
    own = {"FeatureStore": "feature store (random access)",
           "OnTheFlyStore": "manifest, features on the fly"}.get(store["store"], store["store"])
    for name, r in ((own, store),
                    (f"shards of {kind}, streamed ({args.shards})", shards)):
        print(f"| {name} | {r['audio_s_per_s']:.1f} | {r['utts_per_s']:.1f} | "
              f"{r['audio_s_per_s'] / store['audio_s_per_s']:.2f}x | {100 * r['fill']:.1f} % |")


if __name__ == "__main__":
    sys.exit(main())
