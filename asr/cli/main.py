"""The `asr` command: one subcommand per pipeline stage.

    asr prepare   --config recipes/builtin/config.yaml [section.key=value ...]
    asr features  --config ...
    asr train     --config ... [--resume]
    asr decode    --config ...
    asr score     --config ...            (or: asr score --ref REF.jsonl --hyp HYP.jsonl)
    asr transcribe MODEL FILE [FILE ...]

Heavy imports happen inside each command so that `asr --help` is instant.
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
    result = train(_config(args), resume=args.resume)
    print(json.dumps(result))
    return 0


def cmd_average(args) -> int:
    from asr.checkpoint import average_checkpoints, epoch_checkpoints, save_checkpoint
    ckpt_dir = Path(args.run) / "checkpoints"
    paths = epoch_checkpoints(ckpt_dir)[-args.last:]
    out = ckpt_dir / f"avg-last{args.last}.pt"
    save_checkpoint(average_checkpoints(paths), out)
    print(f"averaged {', '.join(p.name for p in paths)} -> {out} "
          f"(decode it with decode.checkpoint=avg-last{args.last})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="Bidirectional-RNN CTC speech recognition.")
    sub = parser.add_subparsers(dest="command", required=True)

    def stage(name, func, help_text):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", help="recipe YAML (e.g. recipes/builtin/config.yaml)")
        p.add_argument("overrides", nargs="*", help="section.key=value overrides")
        p.set_defaults(func=func)
        return p

    from data_prep.cli import add_commands as add_prepare_commands
    add_prepare_commands(sub, stage)
    stage("features", cmd_features, "extract features into the sharded store")
    stage("train", cmd_train, "train a CTC model").add_argument(
        "--resume", action="store_true", help="continue from the run's checkpoints/last.pt")
    p = sub.add_parser("average", help="average the model weights of a run's last N epoch checkpoints")
    p.add_argument("run", help="run folder (exp/<recipe>/<run>)")
    p.add_argument("--last", type=int, default=5, help="how many of the latest epoch-<n>.pt")
    p.set_defaults(func=cmd_average)
    from asr.cli.decoding import add_commands as add_decoding_commands
    add_decoding_commands(sub, stage)
    from asr.cli.scoring import add_commands
    add_commands(sub, stage)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
