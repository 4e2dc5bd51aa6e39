"""`asr prepare` (corpora to manifests), `asr validate` (check manifests), `asr export-kaldi`.

    asr prepare --config recipes/librispeech_100/config.yaml data.source=/data/LibriSpeech
    asr validate data/librispeech_100/manifests/train.jsonl --config recipes/librispeech_100/config.yaml
    asr export-kaldi data/ljspeech/manifests/train.jsonl kaldi/data/train
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from asr.config import load_config

# data.corpus -> module of data_prep with prepare(cfg, progress) -> common.Summary
CORPORA = {"librispeech": "librispeech", "commonvoice": "commonvoice", "ljspeech": "ljspeech",
           "timit": "timit", "kaldi": "kaldi", "folder": "folder"}


def _builtin(cfg) -> int:
    from data_prep.builtin import prepare_builtin
    paths = prepare_builtin(cfg.data.root, hours=cfg.data.hours, dev_hours=cfg.data.dev_hours,
                            test_hours=cfg.data.test_hours, seed=cfg.data.seed, nj=cfg.data.nj)
    for split, path in paths.items():
        print(f"{split}: {path}")
    make_degraded_splits(cfg)
    return 0


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
    summary.print(rejects_file=rejects)
    return summary


def cmd_prepare(args) -> int:
    cfg = load_config(args.config, args.overrides)
    if cfg.data.corpus == "builtin":
        return _builtin(cfg)
    if cfg.data.corpus not in CORPORA:
        print(f"error: unknown corpus {cfg.data.corpus!r} "
              f"(supported: builtin, {', '.join(CORPORA)})", file=sys.stderr)
        return 2
    return run_prepare(cfg).exit_code()


def cmd_export_kaldi(args) -> int:
    from data_prep.kaldi import export
    n = export(args.manifest, args.out_dir)
    print(f"{args.out_dir}: {n} utterances (wav.scp, text, utt2spk, spk2utt, utt2dur)")
    return 0


def add_commands(sub, stage) -> None:
    """Register data-preparation subcommands on the `asr` parser."""
    stage("prepare", cmd_prepare, "make or import the corpus and its manifests "
                                  f"(data.corpus: builtin, {', '.join(CORPORA)})")
    from asr.data.validate import add_command
    add_command(sub)
    p = sub.add_parser("export-kaldi", help="write a Kaldi data dir (wav.scp, text, utt2spk, "
                                            "spk2utt, utt2dur) for a manifest")
    p.add_argument("manifest")
    p.add_argument("out_dir")
    p.set_defaults(func=cmd_export_kaldi)
