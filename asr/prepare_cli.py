"""`asr prepare`: corpora to manifests."""

from __future__ import annotations

import sys

from .config import load_config


def cmd_prepare(args) -> int:
    cfg = load_config(args.config, args.overrides)
    if cfg.data.corpus != "builtin":
        print(f"error: unknown corpus {cfg.data.corpus!r} (supported: builtin)", file=sys.stderr)
        return 2
    from data_prep.builtin import prepare_builtin
    paths = prepare_builtin(cfg.data.root, hours=cfg.data.hours, dev_hours=cfg.data.dev_hours,
                            test_hours=cfg.data.test_hours, seed=cfg.data.seed, nj=cfg.data.nj)
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0


def add_commands(sub, stage) -> None:
    """Register data-preparation subcommands on the `asr` parser."""
    stage("prepare", cmd_prepare, "make the corpus and its manifests")
