"""`asr decode` and `asr transcribe`."""

from __future__ import annotations

import sys
from pathlib import Path

from .config import load_config


def cmd_decode(args) -> int:
    import torch

    from .checkpoint import find_checkpoint, load_checkpoint, model_from_checkpoint
    from .data import FeatureStore
    from .decode import decode_store, write_hyps
    cfg = load_config(args.config, args.overrides)
    path = find_checkpoint(cfg.train.exp_dir, cfg.decode.checkpoint)
    model, vocab, _ = model_from_checkpoint(load_checkpoint(path))
    device = torch.device("cuda" if cfg.train.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    model.to(device)
    for split in cfg.data.test_splits:
        store = FeatureStore(Path(cfg.data.root) / "features" / split)
        hyps = decode_store(model, vocab, store, device)
        out = Path(cfg.train.exp_dir) / f"decode_{split}_{cfg.decode.decoder}" / "hyp.jsonl"
        write_hyps(out, hyps)
        print(f"{split}: {len(hyps)} hypotheses -> {out} (model {path})")
    return 0


def cmd_transcribe(args) -> int:
    from .transcribe import transcribe_files
    texts, errors = transcribe_files(args.model, args.files, args.device)
    if errors:
        print(f"{len(errors)} of {len(args.files)} file(s) could not be transcribed", file=sys.stderr)
    return 0 if texts else 1


def add_commands(sub, stage) -> None:
    """Register decoding subcommands on the `asr` parser (stage() adds --config/overrides)."""
    stage("decode", cmd_decode, "decode the test splits into hyp.jsonl")
    p = sub.add_parser("transcribe", help="transcribe audio files")
    p.add_argument("model", help="checkpoint file or run folder")
    p.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, mp3; any rate)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_transcribe)
