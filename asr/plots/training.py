"""The picture of a training run (`asr plot training`): training loss by update (and dev loss),
dev CER/WER, learning rate, and speed and memory when recorded, from what the run wrote
(asr.train_log.read_training: metrics.jsonl, tensorboard/ or train.log).

    plot_training(RUN)                                            # RUN/training.png
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from asr.plots import pyplot, save_png
from asr.train_log import TrainingLog, read_training


def _summary_lines(h: TrainingLog, steps: np.ndarray, col, epochs: int) -> list[str]:
    loss = col("loss")
    tail = loss[-max(1, len(loss) // 20):]
    lines = [f"updates        {int(steps[-1])}", f"epochs         {epochs}",
             f"final loss     {np.nanmean(tail):.3f} (mean of last {len(tail)})",
             f"final lr       {col('lr')[-1]:.2e}"]
    if h.evals:
        best = min(h.evals, key=lambda e: e["cer"])
        last = h.evals[-1]
        lines += [f"best dev CER   {best['cer']:.2f}% (WER {best['wer']:.2f}%, update {best['step']})",
                  f"last dev CER   {last['cer']:.2f}% (WER {last['wer']:.2f}%)"]
    if h.speed:
        lines.append(f"median speed   {np.median([v for _, v in h.speed]):.0f} audio-s/s")
    for key, name in (("rss_mb", "peak RSS"), ("gpu_peak_mb", "peak GPU")):
        vals = col(key)
        if np.isfinite(vals).any():
            lines.append(f"{name:<14} {np.nanmax(vals):.0f} MiB")
    return lines


def plot_training(run: str | Path, path: str | Path | None = None) -> Path:
    """One PNG of a run's curves: training loss by update (and dev loss), dev CER/WER, learning
    rate, and speed and memory when recorded. path: default RUN/training.png."""
    run = Path(run)
    h = read_training(run)
    if not h.updates:
        raise ValueError(f"{run / 'metrics.jsonl'}: no updates recorded yet")
    plt = pyplot()
    steps = np.array([r["step"] for r in h.updates])
    col = lambda key: np.array([float(r.get(key, math.nan)) for r in h.updates])  # noqa: E731
    mem_keys = [k for k in ("rss_mb", "anon_mb", "gpu_mb", "gpu_peak_mb")
                if any(k in r for r in h.updates)]
    panels = ["loss", "dev", "lr"] + (["speed"] if h.speed else []) + (["memory"] if mem_keys else [])
    n_rows = (len(panels) + 1) // 2
    fig, axes = plt.subplots(n_rows, 2, figsize=(12, 3.3 * n_rows + 0.5), sharex=True, squeeze=False)
    flat = list(axes.flat)
    # epoch boundaries: the first update of each epoch after the first
    epochs = col("epoch")
    starts = [int(s) for s, e, p in zip(steps[1:], epochs[1:], epochs[:-1]) if e != p]

    for name, ax in zip(panels, flat):
        if name == "loss":
            loss = col("loss")
            ax.plot(steps, loss, color="#4c72b0", lw=0.6, alpha=0.45, label="train (per update)")
            k = max(1, len(loss) // 50)
            if k > 1:
                smooth = np.convolve(np.nan_to_num(loss, nan=np.nanmean(loss)), np.ones(k) / k, "valid")
                ax.plot(steps[k - 1:], smooth, color="#4c72b0", lw=1.6, label=f"train (mean of {k})")
            ev = [e for e in h.evals if math.isfinite(e.get("loss", math.nan))]
            if ev:
                ax.plot([e["step"] for e in ev], [e["loss"] for e in ev], "o-", color="#c44e52",
                        ms=4, lw=1.2, label="dev")
            finite = loss[np.isfinite(loss) & (loss > 0)]
            if finite.size and finite.max() / finite.min() > 20:
                ax.set_yscale("log")
            ax.set_ylabel("CTC loss per utterance")
            ax.set_title("loss")
            ax.legend(fontsize=8)
        elif name == "dev":
            ax.set_title("dev error rates (greedy)")
            ax.set_ylabel("%")
            if h.evals:
                for key, color in (("cer", "#55a868"), ("wer", "#8172b2")):
                    vals = [e[key] for e in h.evals]
                    ax.plot([e["step"] for e in h.evals], vals, "o-", color=color, ms=4,
                            label=key.upper())
                best = min(h.evals, key=lambda e: e["cer"])
                ax.plot([best["step"]], [best["cer"]], "*", color="#2d6a3e", ms=12, zorder=3,
                        label=f"best CER {best['cer']:.2f}% (update {best['step']})")
                top = max([e[k] for e in h.evals for k in ("cer", "wer") if math.isfinite(e[k])] or [1.0])
                ax.set_ylim(-0.04 * top, 1.08 * top)  # points at 0 % stay visible above the axis
                ax.legend(fontsize=8)
            else:
                ax.text(0.5, 0.5, "no dev evaluation yet", ha="center", va="center",
                        transform=ax.transAxes, color="grey")
        elif name == "lr":
            ax.plot(steps, col("lr"), color="#dd8452", lw=1.4)
            ax.set_title("learning rate")
            ax.set_ylabel("lr")
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        elif name == "speed":
            ax.plot([s for s, _ in h.speed], [v for _, v in h.speed], ".-", color="#937860", lw=1)
            ax.set_title("speed")
            ax.set_ylabel("audio seconds / second")
            ax.set_ylim(bottom=0)
        elif name == "memory":
            for key in mem_keys:
                ax.plot(steps, col(key), lw=1.2, label=key.replace("_mb", "").replace("_", " "))
            ax.set_title("memory")
            ax.set_ylabel("MiB")
            ax.legend(fontsize=8)
        for s in starts:
            ax.axvline(s, color="0.85", lw=0.8, zorder=0)
        ax.grid(color="0.93", lw=0.6)
    for ax in flat[len(panels):]:
        ax.set_visible(False)
    last_epoch = int(np.nanmax(epochs)) if np.isfinite(epochs).any() else 0
    if len(panels) < len(flat):  # the free slot: the run in numbers
        ax = flat[-1]
        ax.set_visible(True)
        ax.axis("off")
        ax.text(0.05, 0.95, "\n".join(_summary_lines(h, steps, col, last_epoch)),
                transform=ax.transAxes, va="top", ha="left", fontsize=10, family="monospace",
                linespacing=1.6)
    for ax in flat:  # x labels on the lowest visible panel of each column
        ax.tick_params(labelbottom=True)
        ax.set_xlabel("update")
    best = f", best dev CER {min(e['cer'] for e in h.evals):.2f}%" if h.evals else ""
    fig.suptitle(f"{run.name}: {int(steps[-1])} updates, {last_epoch} epoch(s){best}"
                 f"   (grey lines: epoch starts; from {h.source})", fontsize=11)
    fig.tight_layout()
    return save_png(plt, fig, Path(path) if path else run / "training.png")
