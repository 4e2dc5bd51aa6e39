"""Scoring what a recipe has decoded: the hypotheses of every test split and decoder found in
the run folder (asr.run_folder) against ``data.root/manifests/<split>.jsonl``."""

from __future__ import annotations

from pathlib import Path

from asr.run_folder import RunFolder
from asr.scoring.report import write_all
from asr.scoring.score import score_files
from asr.scoring.tables import write_report

_DECODER_ORDER = ["greedy", "beam", "beam_lm"]


def _decoder_rank(name: str) -> tuple:
    return (_DECODER_ORDER.index(name) if name in _DECODER_ORDER else 9, name)


def decoders_of(cfg, split: str) -> list[str]:
    """The configured decoder and every other decoder already decoded for this split (greedy,
    beam, beam_lm, then the rest by name), so the results table has one row per decoder."""
    found = RunFolder(cfg.train.exp_dir).decoders(split, cfg.data.test_splits)
    return sorted(set(found) | {cfg.decode.decoder}, key=_decoder_rank)


def score_decodes(cfg, report_dir: str | Path | None = None, fmt: str | None = None,
                  utt2spk: str | Path | None = None, subset_key: str = "subset",
                  plots: bool = True, **kwargs) -> tuple[list[dict], Path]:
    """Score every decode of cfg's test splits, writing each one's report beside its hyp.jsonl
    and report.md over all of them into report_dir (default exp_dir). kwargs go to score().
    Returns the result rows ({"split", "decoder", **score()}) and report.md's path. Languages
    written without spaces (data.language zh, ja, th, ...) are scored by characters."""
    from asr.text.normalize import writes_without_spaces
    kwargs.setdefault("by_characters", writes_without_spaces(cfg.data.language))
    rows = []
    for split in cfg.data.test_splits:
        ref = Path(cfg.data.root) / "manifests" / f"{split}.jsonl"
        for decoder in decoders_of(cfg, split):
            hyp = RunFolder(cfg.train.exp_dir).hyps(split, decoder)
            s = score_files(ref, hyp, fmt=fmt, utt2spk=utt2spk, subset_key=subset_key, **kwargs)
            rows.append({"split": split, "decoder": decoder, **s})
            write_all(hyp.parent, s, title=f"{split} ({decoder})",
                      sources={"reference": ref, "hypothesis": hyp}, plots=plots)
    report = Path(report_dir) / "report.md" if report_dir else RunFolder(cfg.train.exp_dir).report
    write_report(report, rows)
    return rows, report
