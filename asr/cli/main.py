"""The `asr` command: one subcommand per pipeline stage.

    asr prepare   --config recipes/builtin/config.yaml [section.key=value ...]
    asr features  --config ...
    asr train     --config ... [--resume]
    asr decode    --config ...
    asr score     --config ...            (or: asr score --ref REF.jsonl --hyp HYP.jsonl)
    asr transcribe MODEL FILE [FILE ...]
    asr shard     MANIFEST OUT_DIR [--features STORE_DIR]
    asr serve     MODEL [--port 8000] [--workers N]   (HTTP API, WebSocket stream, browser page)

Argument parsing and printing only; heavy imports happen inside each command so that
`asr --help` is instant.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def _config(args):
    from asr.config import load_config
    return load_config(args.config, args.overrides)


def _splits(cfg) -> list[str]:
    return list(dict.fromkeys([cfg.data.train_split, cfg.data.dev_split, *cfg.data.test_splits]))


def cmd_features(args) -> int:
    from asr.data.store import extract_features
    cfg = _config(args)
    root = Path(cfg.data.root)
    if cfg.features.on_the_fly:
        print("features.on_the_fly is set: features are computed during training and decoding; "
              "no store to build")
        return 0
    for split in _splits(cfg):
        meta = extract_features(root / "manifests" / f"{split}.jsonl", root / "features" / split,
                                cfg.features, nj=cfg.data.nj)
        print(f"{split}: {meta['utterances']} utterances, {meta['hours']} h, "
              f"{meta['skipped']} skipped")
    return 0


def cmd_train(args) -> int:
    from asr.train import train
    from asr.utils import restart_with_allocator
    cfg = _config(args)
    try:
        restart_with_allocator(cfg.train.allocator)  # returns when already preloaded or glibc
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result = train(cfg, resume=args.resume)
    print(json.dumps(result))
    return 0


def cmd_average(args) -> int:
    from asr.checkpoint import average_checkpoints, epoch_checkpoints, save_checkpoint
    from asr.run_folder import RunFolder
    ckpt_dir = RunFolder(args.run).checkpoints
    paths = epoch_checkpoints(ckpt_dir)[-args.last:]
    out = ckpt_dir / f"avg-last{args.last}.pt"
    save_checkpoint(average_checkpoints(paths), out)
    print(f"averaged {', '.join(p.name for p in paths)} -> {out} "
          f"(decode it with decode.checkpoint=avg-last{args.last})")
    return 0


def cmd_validate(args) -> int:
    from asr.config import load_config
    from asr.data.checks import Checks
    from asr.data.validate import validate
    overrides = [a for a in args.items if "=" in a and "." in a.split("=", 1)[0]]
    manifests = [a for a in args.items if a not in overrides]
    if not manifests:
        print("error: give at least one manifest", file=sys.stderr)
        return 2
    cfg = load_config(args.config, overrides)
    checks = Checks(cfg, normalize=False, check_audio=not args.header_only)
    nj = args.nj or cfg.data.nj
    summary = validate(manifests, checks, nj=nj, tolerance=args.tolerance)
    report = None
    if args.report:
        report = summary.write_rejects(args.report)
    print("\n".join(summary.lines(args.limit, report)), flush=True)
    if not summary.usable:
        return 1
    return 1 if args.strict and summary.rejects else 0


def _validate_parser(sub) -> None:
    p = sub.add_parser("validate", help="check every entry of manifests (audio, duration, text, "
                                        "vocabulary, label length) and summarise")
    p.add_argument("items", nargs="+", metavar="MANIFEST",
                   help="manifests (JSONL); section.key=value overrides may follow")
    p.add_argument("--config", help="recipe YAML: vocabulary (data.units), model.subsample, hop")
    p.add_argument("--nj", type=int, default=0, help="worker processes (default data.nj)")
    p.add_argument("--tolerance", type=float, default=0.1,
                   help="allowed duration difference in seconds (default 0.1, or 1%%)")
    p.add_argument("--header-only", action="store_true",
                   help="read audio headers only (fast; no decode, NaN or silence checks)")
    p.add_argument("--report", help="also write every rejected entry to this TSV file")
    p.add_argument("--limit", type=int, default=200, help="offending lines printed (default 200)")
    p.add_argument("--strict", action="store_true", help="exit 1 if any entry is rejected")
    p.set_defaults(func=cmd_validate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="Bidirectional-RNN CTC speech recognition.")
    sub = parser.add_subparsers(dest="command", required=True)

    def stage(name, func, help_text):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", help="recipe YAML (e.g. recipes/builtin/config.yaml)")
        p.add_argument("overrides", nargs="*", help="section.key=value overrides")
        p.set_defaults(func=func)
        return p

    for add_commands in plugin_commands():  # asr prepare, asr export-kaldi (data_prep)
        add_commands(sub, stage)
    _validate_parser(sub)
    stage("features", cmd_features, "extract features into the sharded store")
    stage("train", cmd_train, "train a CTC model").add_argument(
        "--resume", action="store_true", help="continue from the run's checkpoints/last.pt")
    p = sub.add_parser("average", help="average the model weights of a run's last N epoch checkpoints")
    p.add_argument("run", help="run folder (exp/<recipe>/<run>)")
    p.add_argument("--last", type=int, default=5, help="how many of the latest epoch-<n>.pt")
    p.set_defaults(func=cmd_average)
    from asr.cli import decoding, plot, scoring, shard
    decoding.add_commands(sub, stage)
    scoring.add_commands(sub, stage)
    shard.add_commands(sub, stage)
    plot.add_commands(sub, stage)
    from asr.serve import cli as serve_cli  # asr serve (the serve extra, imported when run)
    serve_cli.add_commands(sub, stage)
    return parser


def plugin_commands() -> list:
    """The add_commands(sub, stage) functions other packages register under the "asr.commands"
    entry point (data_prep registers prepare and export-kaldi): asr never imports them by name."""
    from importlib.metadata import entry_points
    return [ep.load() for ep in sorted(entry_points(group="asr.commands"), key=lambda ep: ep.name)]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        return args.func(args)
    except Exception as e:
        if not isinstance(e, _ordinary_errors()):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2


def _ordinary_errors() -> tuple:
    """Mistakes reported in one line (they name the file or setting and what to do) rather
    than a traceback; BundleError is a ValueError. CheckpointError only when asr.checkpoint
    was imported (it alone raises it), so that no command imports torch just to fail."""
    errors = (ValueError, FileNotFoundError, RuntimeError)
    checkpoint = sys.modules.get("asr.checkpoint")
    return errors + (checkpoint.CheckpointError,) if checkpoint else errors


if __name__ == "__main__":
    sys.exit(main())
