"""Pictures of one utterance as the network heard it, to see what it got wrong.

    plot_utterances(MODEL, MANIFEST, OUT_DIR, ids=[...])          # chosen utterances
    plot_utterances(MODEL, MANIFEST, OUT_DIR, worst=5, hyp=HYP)   # the 5 with most word errors

An utterance picture (:func:`plot_utterance`) has, on one time axis in seconds:

    spectrogram     the log-mel (or log linear) features the model reads, in dB, with a colour bar
    words           the greedy hypothesis' words as shaded spans (the CTC frames of their
                    characters, asr.decoding.align), with their confidences
    posteriorgram   per output frame, the probability of every token that is ever above
                    MIN_PROB (each emitted one labelled at its peak) and of the blank (grey)

and the reference, the greedy hypothesis and (when given) a decoded hypothesis in the title.
Features, log-probabilities and words come from the same Transcriber `asr transcribe` runs
(asr.load), so the picture shows what the toolkit does, not a re-implementation of it.

The picture of a training run is asr.plots.training.plot_training (`asr plot training`).
matplotlib is imported lazily with the Agg backend (asr.plots); every PNG is written atomically.
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.plots import DPI, pyplot, save_png

MIN_PROB = 0.1  # a token is drawn in the posteriorgram when its probability ever exceeds this


def _shown(token: str) -> str:
    """A token as printed in the picture: the word separator visible."""
    return {" ": "\u2423", "": "\u2205"}.get(token, token)


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
    from asr.transcribe.windows import Window
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
    plt = pyplot()
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
    return save_png(plt, fig, Path(path))


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
