"""Preparing a recipe's corpus (`asr prepare`): the built-in corpus or an importer, then the
degraded test sets it asks for, then the summary and manifests/rejected.tsv."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

# data.corpus -> module of data_prep with prepare(cfg, progress) -> common.Summary
CORPORA = {"librispeech": "librispeech", "commonvoice": "commonvoice", "ljspeech": "ljspeech",
           "timit": "timit", "kaldi": "kaldi", "folder": "folder",
           "lhotse": "lhotse",  # manifests of any of lhotse's recipes
           # real recorded English speech in Debian game-data packages (docs/corpora.md)
           "queen": "queen", "hedgewars": "hedgewars", "ktuberling": "ktuberling",
           "tuxpaint": "tuxpaint", "warzone2100": "warzone2100"}


def prepare_builtin_corpus(cfg) -> dict[str, Path]:
    """The synthesised built-in corpus, its degraded test sets and, with builtin.real, the mixture
    with real speech (data_prep/mixture.py); the manifest per split."""
    from data_prep.builtin import prepare_builtin
    b = cfg.builtin
    paths = prepare_builtin(cfg.data.root, hours=b.hours, dev_hours=b.dev_hours,
                            test_hours=b.test_hours, seed=cfg.data.seed, nj=cfg.data.nj,
                            engine_weights=b.voices or None)
    make_degraded_splits(cfg)
    if b.real:
        from data_prep import mixture
        mixture.print_report(mixture.make_mixture(cfg))
        mdir = Path(cfg.data.root) / "manifests"
        paths.update({s: mdir / f"{s}.jsonl" for s in
                      (mixture.TRAIN, mixture.DEV, "train_real", "dev_real", "test_real",
                       *(f"test_real_{c}" for c in b.real_degraded))})
    return paths


def make_degraded_splits(cfg) -> None:
    """The data.degraded copies of data.degrade_from (noise, reverb, telephone test sets)."""
    if not cfg.data.degraded:
        return
    from data_prep.degrade import make_degraded
    for condition in cfg.data.degraded:
        make_degraded(cfg.data.root, cfg.data.degrade_from, condition, cfg.data.seed,
                      cfg.data.nj, progress=sys.stderr.isatty())


def run_prepare(cfg, progress: bool | None = None):
    """Prepare cfg.data.corpus; prints the summary, writes manifests/rejected.tsv, returns the
    Summary. progress: progress bars (default: when stderr is a terminal)."""
    module = importlib.import_module(f"data_prep.{CORPORA[cfg.data.corpus]}")
    if progress is None:
        progress = sys.stderr.isatty()
    summary = module.prepare(cfg, progress=progress)
    if summary.usable:
        make_degraded_splits(cfg)
    root = Path(cfg.data.root)
    wanted = dict.fromkeys([cfg.data.train_split, cfg.data.dev_split, *cfg.data.test_splits])
    missing = [s for s in wanted if not (root / "manifests" / f"{s}.jsonl").exists()]
    if missing:
        summary.note(f"warning: the recipe uses split(s) {', '.join(missing)} that this corpus did "
                     f"not produce (made: {', '.join(summary.splits)}): set data.train_split, "
                     "data.dev_split, data.test_splits")
    empty = [s for s in wanted if s in summary.splits and not summary.splits[s][0]]
    if empty and summary.usable:
        summary.note(f"warning: split(s) {', '.join(empty)} have no usable utterance")
    rejects = summary.write_rejects(root / "manifests" / "rejected.tsv")
    print("\n".join(summary.lines(rejects_file=rejects)), flush=True)
    return summary


