"""What a training run records besides its checkpoints, and reading it back.

Written by rank 0 (RunLog, setup_logging): train.log (the log), metrics.jsonl (one line per
update: step, epoch, loss, lr, memory; a resumed run appends again from its checkpoint, so the
last line for a step counts) and TensorBoard scalars in tensorboard/ (train/*, dev/*).
Read back by read_training (the pictures of `asr plot training`, asr.plots.training): the
updates from metrics.jsonl, the dev evaluations and speed from tensorboard/ or, without it,
from the lines of train.log this module writes.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from asr.utils import gpu_memory_mb, memory_mb
from asr.run_folder import RunFolder

log = logging.getLogger("asr.train")


# ---------------------------------------------------------------- writing

def setup_logging(run_dir: Path | None, rank: int = 0) -> None:
    """Log to stderr and run_dir/train.log (rank 0); replaces handlers of an earlier run only."""
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, "_asr_run", False)]:
        root.removeHandler(h)
        h.close()
    handlers: list[logging.Handler] = []
    if not any(type(h) is logging.StreamHandler for h in root.handlers):  # the CLI may have one
        handlers.append(logging.StreamHandler(sys.stderr))
    if run_dir is not None and rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(RunFolder(run_dir).log))
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    for h in handlers:
        h._asr_run = True
        h.setFormatter(fmt)
        root.addHandler(h)
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)


class _NoWriter:
    """Stands in for a SummaryWriter when tensorboard is not installed."""

    def add_scalar(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def tensorboard_writer(folder: Path):
    """A TensorBoard SummaryWriter, or a writer of nothing without the tensorboard package (the
    scalars are in metrics.jsonl and train.log all the same)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info("tensorboard is not installed: no TensorBoard logs (pip install 'asr-ctc[tensorboard]')")
        return _NoWriter()
    return SummaryWriter(str(folder))


class RunLog:
    """The records of a run's rank 0 (other ranks write nothing): metrics.jsonl, TensorBoard
    scalars and the progress lines of the log. rate: the dev error rate's name ("WER", or
    "PER" for phone units, whose words are phones)."""

    def __init__(self, run_dir: Path, rank: int, device, rate: str = "WER"):
        self.run_dir, self.rank, self.device, self.rate = run_dir, rank, device, rate
        self.writer = None  # a SummaryWriter, from open()
        self.metrics = None  # metrics.jsonl, opened at the first update

    def open(self) -> None:
        """Start the TensorBoard writer (when training starts)."""
        if self.rank == 0:
            self.writer = tensorboard_writer(self.run_dir / "tensorboard")

    def close(self) -> None:
        if self.writer:
            self.writer.close()
        if self.metrics:
            self.metrics.close()

    def memory(self) -> dict:
        """Resident memory (total, anonymous, file-backed; MiB, rounded) and, on CUDA, GPU
        memory allocated and its peak: logged with the other scalars."""
        mem = memory_mb()
        mem = {k: mem[k] for k in ("rss_mb", "anon_mb", "file_mb") if k in mem}
        mem.update(gpu_memory_mb(self.device))
        return {k: round(v, 1) for k, v in mem.items()}

    def update(self, step: int, epoch: int, update_losses: list[float], lr: float) -> None:
        """Append an update's loss (the mean of its batches') to metrics.jsonl; epoch counts
        from 1."""
        if self.rank != 0:
            return
        if self.metrics is None:
            self.metrics = open(RunFolder(self.run_dir).metrics, "a", encoding="utf-8")
        loss = sum(update_losses) / len(update_losses)
        self.metrics.write(json.dumps({"step": step, "epoch": epoch, "loss": loss, "lr": lr,
                                       **self.memory()}) + "\n")
        self.metrics.flush()

    def progress(self, step: int, epoch: int, recent: list[float], lr: float, speed: float) -> None:
        """The progress line of the log and TensorBoard's train/* scalars: the mean of the
        recent batch losses, lr, speed (audio seconds per second) and memory."""
        if self.rank != 0 or not recent:
            return
        self.writer.add_scalar("train/loss", recent[-1], step)
        self.writer.add_scalar("train/lr", lr, step)
        self.writer.add_scalar("train/audio_seconds_per_second", speed, step)
        mem = self.memory()
        for k, v in mem.items():  # train/rss_mb, anon_mb, file_mb (+ gpu_mb, gpu_peak_mb)
            self.writer.add_scalar(f"train/{k}", v, step)
        gpu = f", GPU {mem['gpu_mb']:.0f} MB (peak {mem['gpu_peak_mb']:.0f})" if "gpu_mb" in mem else ""
        log.info("epoch %d update %d loss %.3f lr %.2e %.0f audio-s/s, RSS %.0f MB (anon %.0f, "
                 "file %.0f)%s", epoch, step, sum(recent) / len(recent), lr, speed,
                 mem["rss_mb"], mem.get("anon_mb", mem["rss_mb"]), mem.get("file_mb", 0.0), gpu)

    def evaluation(self, epoch: int, finished: bool, step: int, elapsed: float,
                   losses: list[float], metrics: dict) -> None:
        """An epoch's (or a stopped run's) train loss and dev metrics: the log and TensorBoard's
        dev/* scalars. epoch: the epochs done (finished: the last of them just now, else the
        run stopped within the next); elapsed: seconds of training."""
        if self.rank != 0:
            return
        train_loss = sum(losses) / max(len(losses), 1)
        where = f"epoch {epoch} done" if finished else f"stopped in epoch {epoch + 1}"
        log.info("%s (step %d, %.1f min): train loss %.3f, dev loss %.3f, "
                 "dev %s %.2f%%, CER %.2f%%", where, step, elapsed / 60, train_loss,
                 metrics["loss"], self.rate, metrics["wer"], metrics["cer"])
        for k, v in metrics.items():
            self.writer.add_scalar(f"dev/{k}", v, step)


# ---------------------------------------------------------------- reading

@dataclass
class TrainingLog:
    """A run's history. updates: metrics.jsonl rows by step (the last line of a step counts).
    evals: [{"step", "loss", "wer", "cer"}] of dev evaluations. speed: [(step, audio-s/s)]."""

    updates: list[dict] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    speed: list[tuple[int, float]] = field(default_factory=list)
    source: str = ""


def read_metrics(path: str | Path) -> list[dict]:
    """metrics.jsonl rows sorted by step, the last line written for a step winning (a resumed
    run appends again from its checkpoint); a torn last line is skipped."""
    rows: dict[int, dict] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "step" in row:
                rows[int(row["step"])] = row
    return [rows[k] for k in sorted(rows)]


def _by_step(pairs) -> list[tuple[int, float]]:
    last = {}
    for step, value in pairs:
        last[int(step)] = float(value)
    return sorted(last.items())


def _tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    tb_log = logging.getLogger("tensorboard")
    level = tb_log.level
    tb_log.setLevel(logging.WARNING)  # not "No path found after ..." for every file read
    try:
        acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})  # 0: keep every event
        acc.Reload()
    finally:
        tb_log.setLevel(level)
    return {tag: _by_step((e.step, e.value) for e in acc.Scalars(tag))
            for tag in acc.Tags().get("scalars", [])}


_EVAL_LINE = re.compile(r"\(step (\d+), [^)]*\): train loss \S+, dev loss (\S+), "
                        r"dev (?:WER|PER) (\S+)%, CER (\S+)%")  # PER: phone units
_STEP_LINE = re.compile(r"update (\d+) loss \S+ lr \S+ (\S+) audio-s/s")


def _log_lines(path: Path) -> tuple[list[dict], list[tuple[int, float]]]:
    evals, speed = {}, []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if m := _EVAL_LINE.search(line):
            evals[int(m[1])] = {"step": int(m[1]), "loss": float(m[2]), "wer": float(m[3]),
                                "cer": float(m[4])}
        elif m := _STEP_LINE.search(line):
            speed.append((int(m[1]), float(m[2])))
    return [evals[k] for k in sorted(evals)], _by_step(speed)


def read_training(run: str | Path) -> TrainingLog:
    """The history of a run folder (see TrainingLog); raises FileNotFoundError without
    metrics.jsonl."""
    run = Path(run)
    path = RunFolder(run).metrics
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (is {run} a training run folder?)")
    out = TrainingLog(updates=read_metrics(path))
    tb = run / "tensorboard"
    scalars = {}
    if tb.is_dir():
        try:
            scalars = _tensorboard_scalars(tb)
        except Exception as e:  # a damaged event file: fall back to train.log
            log.warning("%s: cannot read the TensorBoard events (%s); using train.log", tb, e)
    if scalars.get("dev/cer"):
        cols = {k: dict(scalars.get(f"dev/{k}", [])) for k in ("loss", "wer", "cer")}
        out.evals = [{"step": s, **{k: cols[k].get(s, math.nan) for k in cols}}
                     for s, _ in scalars["dev/cer"]]
        out.speed = scalars.get("train/audio_seconds_per_second", [])
        out.source = "metrics.jsonl + tensorboard"
    elif RunFolder(run).log.is_file():
        out.evals, out.speed = _log_lines(RunFolder(run).log)
        out.source = "metrics.jsonl + train.log"
    else:
        out.source = "metrics.jsonl"
    return out
