"""Training memory benchmark: `make bench-memory`.

Runs the recipe's training (`asr train`, in a child process, into a temporary exp_dir that is
removed afterwards) for a fixed wall time or number of updates and samples the trainer's
resident memory: total RSS and its anonymous (heap) and file-backed (memory-mapped feature
shards: shared, reclaimable page cache) parts. Prints a table at the sample points (start =
after the first update, the reference point, then every --every minutes, the end) and the ratio
end / reference, which stays near 1.0 when memory is flat.

    python -m asr.bench.memory --config recipes/builtin/config.yaml [--minutes 60] [section.key=value ...]
    python -m asr.bench.memory --config ... --steps 600 --at-step 100

The trainer writes its memory into metrics.jsonl with every update (asr.train_log.RunLog.update);
on Linux this process also reads /proc/<pid>/status of the trainer every --interval seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from asr.utils import memory_mb


def _metrics_tail(path: Path, pos: int) -> tuple[list[dict], int]:
    """Complete metrics.jsonl lines written since byte `pos`; the new position."""
    if not path.exists():
        return [], pos
    with open(path, "rb") as f:
        f.seek(pos)
        data = f.read()
    end = data.rfind(b"\n") + 1
    rows = []
    for line in data[:end].splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass
    return rows, pos + end


def run(config: str | None, overrides: list[str], minutes: float, steps: int, interval: float,
        exp_dir: Path, log_path: Path) -> list[dict]:
    """Train in a child process; samples [{t (s since the first update), step, rss_mb, anon_mb,
    file_mb}], one per poll (and per update when /proc is not readable)."""
    limits = [f"train.max_steps={steps}"] if steps else [f"train.max_minutes={minutes}"]
    cmd = ([sys.executable, "-m", "asr.cli", "train"] + (["--config", config] if config else [])
           + ["train.epochs=100000"] + limits + list(overrides) + [f"train.exp_dir={exp_dir}"])
    print("running: " + " ".join(cmd), file=sys.stderr, flush=True)
    metrics = exp_dir / "metrics.jsonl"
    samples: list[dict] = []
    pos, step, first = 0, 0, None
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        status = f"/proc/{proc.pid}/status"
        last_report = time.time()
        while True:
            finished = proc.poll() is not None
            rows, pos = _metrics_tail(metrics, pos)
            now = time.time()
            if rows and first is None:
                first = now
            if rows:
                step = rows[-1]["step"]
            mem = memory_mb(status) if not finished and os.path.exists(status) else {}
            if first is not None and "anon_mb" in mem:
                samples.append({"t": now - first, "step": step,
                                **{k: mem[k] for k in ("rss_mb", "anon_mb", "file_mb")}})
            elif first is not None:  # no /proc: the trainer's own figures, one per update
                samples += [{"t": now - first, "step": r["step"], "rss_mb": r.get("rss_mb", 0.0),
                             "anon_mb": r.get("anon_mb", 0.0), "file_mb": r.get("file_mb", 0.0)}
                            for r in rows if "rss_mb" in r]
            if samples and now - last_report > 300:
                s = samples[-1]
                print(f"  {s['t'] / 60:5.1f} min, update {s['step']}: RSS {s['rss_mb']:.0f} MB "
                      f"(anon {s['anon_mb']:.0f}, file {s['file_mb']:.0f})", file=sys.stderr, flush=True)
                last_report = now
            if finished:
                break
            time.sleep(interval)
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"training failed (exit {proc.returncode}):\n{tail}")
    return samples


def pick(samples: list[dict], minutes: float | None = None, step: int | None = None) -> dict:
    """The first sample at or after `minutes` (or update `step`); the last one otherwise."""
    for s in samples:
        if (minutes is not None and s["t"] >= minutes * 60) or (step is not None and s["step"] >= step):
            return s
    return samples[-1]


def table(samples: list[dict], at: float | None, at_step: int | None, every: float) -> tuple[str, float]:
    """Markdown table of the sample points and the ratio of total RSS end / reference."""
    ref = pick(samples, at, at_step)
    points = [("start (update 1)", samples[0]), (f"reference ({'update %d' % at_step if at_step else '%g min' % at})", ref)]
    t = every
    while every and t * 60 < samples[-1]["t"]:
        s = pick(samples, minutes=t)
        if s["t"] > ref["t"]:
            points.append((f"{t:g} min", s))
        t += every
    points.append(("end", samples[-1]))
    peak = max(samples, key=lambda s: s["rss_mb"])
    lines = ["| point | minutes | update | RSS MB | anon MB | file MB |", "|---|---|---|---|---|---|"]
    for name, s in points + [("peak", peak)]:
        lines.append(f"| {name} | {s['t'] / 60:.1f} | {s['step']} | {s['rss_mb']:.0f} | "
                     f"{s['anon_mb']:.0f} | {s['file_mb']:.0f} |")
    end = samples[-1]
    ratio = end["rss_mb"] / ref["rss_mb"]
    anon = end["anon_mb"] / ref["anon_mb"] if ref["anon_mb"] else float("nan")
    lines.append(f"\nRSS end / reference: {ratio:.3f} (anonymous {anon:.3f}); "
                 f"growth {end['rss_mb'] - ref['rss_mb']:+.0f} MB over "
                 f"{(end['t'] - ref['t']) / 60:.1f} min, {end['step'] - ref['step']} updates")
    return "\n".join(lines), ratio


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m asr.bench.memory", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config")
    p.add_argument("--minutes", type=float, default=60.0, help="training wall time (train.max_minutes)")
    p.add_argument("--steps", type=int, default=0, help="train this many updates instead of --minutes")
    p.add_argument("--at", type=float, default=5.0, help="reference point, minutes after update 1")
    p.add_argument("--at-step", type=int, default=0, help="reference point at this update instead")
    p.add_argument("--every", type=float, default=10.0, help="table rows every this many minutes")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between RSS samples")
    p.add_argument("--keep", help="keep the run's folder here (train.log, metrics.jsonl) instead of deleting it")
    p.add_argument("--json", help="also write the samples to this file")
    p.add_argument("overrides", nargs="*", help="config overrides, section.key=value")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="asr-bench-memory-"))
    exp_dir = Path(args.keep) if args.keep else tmp / "run"
    try:
        samples = run(args.config, args.overrides, args.minutes, args.steps, args.interval,
                      exp_dir, tmp / "train.log")
        if args.keep:
            shutil.copy(tmp / "train.log", exp_dir / "bench-stdout.log")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not samples:
        print("no memory samples (training ended before its first update?)", file=sys.stderr)
        return 1
    if args.json:
        Path(args.json).write_text(json.dumps(samples))
    text, _ = table(samples, None if args.at_step else args.at, args.at_step or None, args.every)
    limit = f"{args.steps} updates" if args.steps else f"{args.minutes:g} min"
    env = " ".join(f"{k}={os.environ[k]}" for k in sorted(os.environ) if k.startswith("MALLOC_"))
    print(f"\nTrainer memory over {limit} of training ({args.config or 'default config'}"
          f"{' ' + ' '.join(args.overrides) if args.overrides else ''}{'; ' + env if env else ''})\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
