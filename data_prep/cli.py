"""The data-preparation verbs of the `asr` command: argparse and printing only.

    asr prepare --config recipes/librispeech_100/config.yaml data.source=/data/LibriSpeech
    asr export-kaldi data/ljspeech/manifests/train.jsonl kaldi/data/train
    asr export-lhotse data/ljspeech/manifests/train.jsonl lhotse/ [--corpus ljspeech]

`asr` finds these through the "asr.commands" entry point (pyproject.toml): asr never imports
data_prep, data_prep builds on asr.
"""

from __future__ import annotations

import sys

from asr.config import load_config


def cmd_prepare(args) -> int:
    from data_prep.prepare import CORPORA, prepare_builtin_corpus, run_prepare
    cfg = load_config(args.config, args.overrides)
    if cfg.data.corpus == "builtin":
        for split, path in prepare_builtin_corpus(cfg).items():
            print(f"{split}: {path}")
        return 0
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


def cmd_export_lhotse(args) -> int:
    from data_prep.lhotse import export
    recordings, supervisions, n = export(args.manifest, args.out_dir, args.corpus, args.split)
    print(f"{args.out_dir}: {n} supervisions -> {supervisions.name}, recordings -> {recordings.name}")
    return 0


def add_commands(sub, stage) -> None:
    """Register data-preparation subcommands on the `asr` parser."""
    from data_prep.prepare import CORPORA
    stage("prepare", cmd_prepare, "make or import the corpus and its manifests "
                                  f"(data.corpus: builtin, {', '.join(CORPORA)})")
    p = sub.add_parser("export-kaldi", help="write a Kaldi data dir (wav.scp, text, utt2spk, "
                                            "spk2utt, utt2dur) for a manifest")
    p.add_argument("manifest")
    p.add_argument("out_dir")
    p.set_defaults(func=cmd_export_kaldi)
    p = sub.add_parser("export-lhotse", help="write a manifest as lhotse recordings + supervisions "
                                             "(<corpus>_recordings_<split>.jsonl.gz, ...)")
    p.add_argument("manifest")
    p.add_argument("out_dir")
    p.add_argument("--corpus", default="asr", help="the corpus part of the file names (default asr)")
    p.add_argument("--split", help="the split part of the file names (default: the manifest's name)")
    p.set_defaults(func=cmd_export_lhotse)
