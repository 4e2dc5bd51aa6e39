"""Pictures people would rather look at: one utterance as the network heard it, and a training run.

    plot_utterances(MODEL, MANIFEST, OUT_DIR, ids=[...])          # chosen utterances
    plot_utterances(MODEL, MANIFEST, OUT_DIR, worst=5, hyp=HYP)   # the 5 with most word errors
    plot_training(RUN)                                            # RUN/training.png

An utterance picture (:func:`plot_utterance`) has, on one time axis in seconds:

    spectrogram     the log-mel (or log linear) features the model reads, in dB, with a colour bar
    words           the greedy hypothesis' words as shaded spans (the CTC frames of their
                    characters, asr.decoding.align), with their confidences
    posteriorgram   per output frame, the probability of every token that is ever above
                    MIN_PROB (each emitted one labelled at its peak) and of the blank (grey)

and the reference, the greedy hypothesis and (when given) a decoded hypothesis in the title.
Features, log-probabilities and words come from the same Transcriber `asr transcribe` runs
(asr.load), so the picture shows what the toolkit does, not a re-implementation of it.

A training picture (:func:`plot_training`) reads RUN/metrics.jsonl (one line per update: step,
epoch, loss, lr, memory; a resumed run repeats steps, and the last line for a step counts)
and the dev evaluations and speed from RUN/tensorboard (or, without it, RUN/train.log).

matplotlib is imported lazily with the Agg backend; every PNG is written atomically.
"""

from __future__ import annotations

import json
import logging
import math
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asr.utils import atomic_path

log = logging.getLogger(__name__)

MIN_PROB = 0.1  # a token is drawn in the posteriorgram when its probability ever exceeds this
DPI = 100


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(plt, fig, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=DPI)
    plt.close(fig)
    return Path(path)


def _shown(token: str) -> str:
    """A token as printed in the picture: the word separator visible."""
    return {" ": "\u2423", "": "\u2205"}.get(token, token)


# ================================================================ one utterance

@dataclass
class UtteranceView:
    """What an utterance picture shows (all NumPy, so it can be plotted without the model).

    feats: (frames, dim) natural-log power features, one frame every hop_s seconds.
    probs: (T, V) posteriors, one output frame every frame_s seconds. tokens: the vocabulary
    (index 0 the blank). words: the greedy words [{"word", "start", "end", "conf"}] (seconds).
    """

    id: str
    ref: str
    feats: np.ndarray
    hop_s: float
    sample_rate: int
    feature_kind: str
    probs: np.ndarray
    frame_s: float
    tokens: list[str]
    words: list[dict]
    duration: float
    hyp: str | None = None  # a decoder's hypothesis to show besides the greedy one
    blank: int = 0

    @property
    def greedy(self) -> str:
        return " ".join(w["word"] for w in self.words)


def load_model(path: str | Path, device: str = "cpu"):
    """The toolkit's Transcriber of a bundle, run folder or checkpoint, decoding greedily."""
    import asr
    return asr.load(path, device=device, decoder="greedy").transcriber


def utterance_view(transcriber, entry: dict, hyp: str | None = None) -> UtteranceView:
    """Features, posteriors and greedy words of one manifest entry (its whole audio, one pass
    through the network; words split at pauses as `asr transcribe` does)."""
    from asr.data.audio import entry_audio
    from asr.transcribe.transcriber import Window
    t = transcriber
    wav = entry_audio(entry, t.sample_rate)
    feats = t.features(wav)
    lp = t.network([wav])[0]
    words = t.decode_window(Window(wav, 0.0, True, True), lp)
    cfg = t.features.cfg
    return UtteranceView(id=str(entry.get("id", "")), ref=str(entry.get("text", "")),
                         feats=feats.numpy(), hop_s=t.features.hop / cfg.sample_rate,
                         sample_rate=cfg.sample_rate, feature_kind=cfg.kind,
                         probs=lp.exp().numpy(), frame_s=t.frame_s, tokens=list(t.vocab.tokens),
                         words=words, duration=len(wav) / t.sample_rate, hyp=hyp,
                         blank=t.vocab.blank)


def _place(ax, texts, levels: list[float], pad_px: float = 4.0) -> None:
    """Put each text (in time order, x already set) on the lowest level where it overlaps no
    earlier text; when every level is taken, on the one that frees first."""
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    right = [-math.inf] * len(levels)
    for t in texts:
        box = t.get_window_extent(renderer)
        shift = max(frame.x0 + 3 - box.x0, 0) or min(frame.x1 - 3 - box.x1, 0)
        if shift:  # keep a label near an edge inside the axes, not clipped
            x0 = ax.transData.inverted().transform((box.x0, 0))[0]
            x1 = ax.transData.inverted().transform((box.x0 + shift, 0))[0]
            t.set_x(t.get_position()[0] + x1 - x0)
            box = t.get_window_extent(renderer)
        free = [k for k, r in enumerate(right) if box.x0 >= r + pad_px]
        k = free[0] if free else int(np.argmin(right))
        t.set_y(levels[k])
        right[k] = box.x1


def _layout(fig_w: float, rows: list[float], top: float, bottom: float = 0.55, left: float = 0.85,
            right: float = 1.5, gap: float = 0.12):
    """Axes rectangles (figure fractions) for rows of the given heights (inches) stacked from
    the top, and for a colour bar / legend column at the right of each row."""
    fig_h = top + sum(rows) + gap * (len(rows) - 1) + bottom
    main, side, y = [], [], fig_h - top
    for h in rows:
        y -= h
        main.append([left / fig_w, y / fig_h, (fig_w - left - right) / fig_w, h / fig_h])
        side.append([(fig_w - right + 0.15) / fig_w, y / fig_h, 0.15 / fig_w, h / fig_h])
        y -= gap
    return fig_h, main, side


def _title(view: UtteranceView, width_chars: int) -> list[str]:
    lines = [f"{view.id}   ({view.duration:.2f} s)"]
    rows = [("reference", view.ref), ("greedy", view.greedy or "(nothing)")]
    if view.hyp is not None and view.hyp != view.greedy:
        rows.append(("hypothesis", view.hyp or "(nothing)"))
    for name, text in rows:
        lines += textwrap.wrap(f"{name}: {text}", width_chars, subsequent_indent="    ") or [f"{name}:"]
    return lines


def plot_utterance(view: UtteranceView, path: str | Path) -> Path:
    """Write the picture of one utterance (see the module docstring) to path (PNG)."""
    import librosa.display
    plt = _pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator
    end_s = max((view.feats.shape[0] - 0.5) * view.hop_s, 1e-3)  # the spectrogram's (centred frames)
    fig_w = float(np.clip(2.5 + 2.2 * end_s, 9.0, 48.0))
    title = _title(view, int((fig_w - 1.5) * 13))
    fig_h, main, side = _layout(fig_w, [2.6, 0.8, 2.3], top=0.25 + 0.2 * len(title))
    fig = plt.figure(figsize=(fig_w, fig_h), dpi=DPI)
    ax_spec = fig.add_axes(main[0])
    ax_words = fig.add_axes(main[1], sharex=ax_spec)
    ax_post = fig.add_axes(main[2], sharex=ax_spec)
    fig.text(0.85 / fig_w, 1 - 0.12 / fig_h, "\n".join(title), ha="left", va="top", fontsize=10,
             linespacing=1.35)

    # -- spectrogram
    db = view.feats.T * (10.0 / math.log(10.0))  # natural-log power -> dB
    vmax = float(db.max()) if db.size else 0.0
    hop = int(round(view.hop_s * view.sample_rate))
    mel = view.feature_kind == "fbank"
    img = librosa.display.specshow(db, ax=ax_spec, sr=view.sample_rate, hop_length=hop,
                                   x_axis="s", y_axis="mel" if mel else "linear", htk=True,
                                   fmin=0.0, fmax=view.sample_rate / 2, cmap="magma",
                                   vmin=vmax - 80.0, vmax=vmax)
    ax_spec.set_ylabel("frequency (Hz, mel scale)" if mel else "frequency (Hz)")
    # about one time tick per inch (the axes are shared: this sets all three)
    ax_spec.xaxis.set_major_locator(MaxNLocator(nbins=max(4, int(fig_w - 2.5)), steps=[1, 2, 2.5, 5, 10]))
    ax_spec.set_xlabel("")
    ax_spec.tick_params(labelbottom=False)
    cbar = fig.colorbar(img, cax=fig.add_axes(side[0]))
    cbar.set_label("power (dB)")

    # -- words: spans of the greedy path's frames, text on non-overlapping levels
    ax_words.set_ylim(0, 1)
    ax_words.set_yticks([])
    ax_words.set_ylabel("words\n(conf.)", rotation=0, ha="right", va="center")
    ax_words.tick_params(labelbottom=False)
    texts = []
    for k, w in enumerate(view.words):
        color = "#4c72b0" if k % 2 == 0 else "#dd8452"
        ax_words.axvspan(w["start"], w["end"], color=color, alpha=0.35, lw=0)
        ax_post.axvspan(w["start"], w["end"], color=color, alpha=0.10, lw=0)
        texts.append(ax_words.text((w["start"] + w["end"]) / 2, 0.5,
                                   f"{w['word']} ({w.get('conf', 1.0):.2f})", ha="center",
                                   va="center", fontsize=9, clip_on=True))
    if not view.words:
        ax_words.text(0.5, 0.5, "(no words)", ha="center", va="center", color="grey",
                      transform=ax_words.transAxes)
    _place(ax_words, texts, [0.5, 0.18, 0.82])

    # -- posteriorgram: blank in grey, the other tokens that are ever likely in colour
    T = view.probs.shape[0]
    x = (np.arange(T) + 0.5) * view.frame_s
    ax_post.plot(x, view.probs[:, view.blank], color="0.55", lw=0.9, label="blank")
    shown = [v for v in range(view.probs.shape[1]) if v != view.blank
             and T and view.probs[:, v].max() > MIN_PROB]
    cmap = plt.get_cmap("tab10" if len(shown) <= 10 else "tab20")
    colors = {v: cmap(i % cmap.N) for i, v in enumerate(shown)}
    for v in shown:
        ax_post.plot(x, view.probs[:, v], color=colors[v], lw=1.4)
    # label each emitted unit of the best path at its peak
    best = view.probs.argmax(axis=1) if T else np.zeros(0, int)
    labels, t = [], 0
    while t < T:
        u = t
        while u + 1 < T and best[u + 1] == best[t]:
            u += 1
        v = int(best[t])
        if v != view.blank:
            peak = t + int(np.argmax(view.probs[t:u + 1, v]))
            labels.append(ax_post.text(x[peak], 1.04, _shown(view.tokens[v]), ha="center",
                                       va="bottom", fontsize=9, color=colors.get(v, "black"),
                                       fontweight="bold", clip_on=True))
        t = u + 1
    _place(ax_post, labels, [1.04, 1.15])
    ax_post.set_ylim(0, 1.28)
    ax_post.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    ax_post.set_ylabel("posterior probability")
    ax_post.set_xlabel("time (s)")
    ax_post.set_xlim(0, end_s)
    ax_post.grid(axis="y", color="0.9", lw=0.6)
    handles = [Line2D([], [], color="0.55", lw=0.9, label="blank")]
    handles += [Line2D([], [], color=colors[v], lw=2, label=_shown(view.tokens[v])) for v in shown]
    leg_ax = fig.add_axes(side[2])
    leg_ax.axis("off")
    leg_ax.legend(handles=handles, loc="center left", bbox_to_anchor=(-1.0, 0.5), fontsize=8,
                  frameon=False, ncol=1 if len(handles) <= 12 else 2, handlelength=1.2,
                  title="token", title_fontsize=8)
    return _save(plt, fig, Path(path))


# ---------------------------------------------------------------- which utterances

def select_utterances(manifest: str | Path, ids: list[str] | None = None, worst: int | None = None,
                      hyp: str | Path | None = None) -> list[tuple[dict, str | None]]:
    """(manifest entry, decoded hypothesis or None) of the chosen utterances, in order: the
    given ids, or the `worst` with most word errors of the hyp file against the manifest
    (asr.scoring.score.score_files; ties by id)."""
    from asr.data.manifest import read_manifest
    entries = {str(e["id"]): e for e in read_manifest(manifest)}
    if ids:
        missing = [i for i in ids if i not in entries]
        if missing:
            raise ValueError(f"{manifest}: no utterance {', '.join(missing[:10])}")
        return [(entries[i], None) for i in ids]
    if not worst or hyp is None:
        raise ValueError("choose utterances: ids, or worst=N with a hyp file")
    from asr.scoring.score import score_files
    s = score_files(manifest, hyp, ref_fmt="jsonl", n_boot=0)
    return [(entries[u["id"]], u["hyp"]) for u in s["per_utt"][:worst] if u["id"] in entries]


def picture_name(uid: str) -> str:
    """A file name for an utterance id (path separators and odd characters made '_')."""
    return re.sub(r"[^\w.=+-]+", "_", uid).strip("._") or "utterance"


def plot_utterances(model: str | Path, manifest: str | Path, out_dir: str | Path,
                    ids: list[str] | None = None, worst: int | None = None,
                    hyp: str | Path | None = None, device: str = "cpu",
                    transcriber=None) -> dict[str, Path]:
    """One PNG per chosen utterance (see select_utterances) in out_dir; {id: path}, in order.
    Worst-first pictures are named NN_<id>.png (NN = rank), chosen ones <id>.png."""
    chosen = select_utterances(manifest, ids, worst, hyp)
    t = transcriber or load_model(model, device)
    out = Path(out_dir)
    paths = {}
    for rank, (entry, text) in enumerate(chosen, 1):
        name = picture_name(str(entry["id"]))
        if not ids:
            name = f"{rank:0{len(str(len(chosen)))}d}_{name}"
        paths[str(entry["id"])] = plot_utterance(utterance_view(t, entry, text), out / f"{name}.png")
    return paths


# ================================================================ a training run

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
                        r"dev WER (\S+)%, CER (\S+)%")
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
    path = run / "metrics.jsonl"
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
    elif (run / "train.log").is_file():
        out.evals, out.speed = _log_lines(run / "train.log")
        out.source = "metrics.jsonl + train.log"
    else:
        out.source = "metrics.jsonl"
    return out


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
    plt = _pyplot()
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
    return _save(plt, fig, Path(path) if path else run / "training.png")
