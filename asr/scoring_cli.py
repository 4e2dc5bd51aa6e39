"""`asr score`: WER/CER of a recipe's decodes, or of any reference/hypothesis pair."""

from __future__ import annotations

import sys
from pathlib import Path

from .config import load_config


def _config(args):
    return load_config(args.config, args.overrides)


def cmd_score(args) -> int:
    from .score import results_table, score_files, write_report
    if args.ref or args.hyp:
        if not (args.ref and args.hyp):
            print("error: --ref and --hyp go together", file=sys.stderr)
            return 2
        s = score_files(args.ref, args.hyp)
        print(f"WER {s['wer']:.2f}% ({s['sub']} sub, {s['del']} del, {s['ins']} ins of "
              f"{s['words']} words), CER {s['cer']:.2f}%, {s['utterances']} utterances")
        return 0
    cfg = _config(args)
    rows = []
    for split in cfg.data.test_splits:
        hyp = Path(cfg.train.exp_dir) / f"decode_{split}_{cfg.decode.decoder}" / "hyp.jsonl"
        ref = Path(cfg.data.root) / "manifests" / f"{split}.jsonl"
        rows.append({"split": split, "decoder": cfg.decode.decoder, **score_files(ref, hyp)})
    report = Path(cfg.train.exp_dir) / "report.md"
    write_report(report, rows)
    print(results_table(rows))
    print(f"report: {report}")
    return 0



def add_commands(sub, stage) -> None:
    """Register the scoring subcommands on the `asr` parser (stage() adds --config/overrides)."""
    p = stage("score", cmd_score, "WER/CER of decodes (recipe) or of --ref/--hyp files")
    p.add_argument("--ref", help="reference JSONL manifest")
    p.add_argument("--hyp", help="hypothesis JSONL")
