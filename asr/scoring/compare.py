"""Is system B better than system A on the same references?

`compare_results` puts the difference in WER with its bootstrap CI, the paired bootstrap and
sclite's MAPSSWE test (`asr.scoring.stats`) and a verdict together; `mapsswe_segments` cuts the
two alignments into MAPSSWE segments; `comparison_text` says it all in words. `compare_files`
scores two hypothesis files against one reference and returns a `Comparison`, which also
writes compare.md / compare.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.scoring.readers import read_transcripts
from asr.scoring.score import Alignment, score_transcripts, summary
from asr.scoring.stats import ALPHA, mapsswe, paired_bootstrap, verdict
from asr.scoring.tables import fmt_wer
from asr.utils import atomic_write_text


# -- MAPSSWE segments ----------------------------------------------------------------------------
def _position_errors(al: Alignment, offsets: np.ndarray, total: int) -> np.ndarray:
    """Errors on the element stream g0 w0 g1 w1 ... w(n-1) gn of every utterance (words at odd
    offsets carry S/D, gaps carry insertions)."""
    err = np.zeros(total, np.int64)
    for u, chunks in enumerate(al.chunks):
        base = offsets[u]
        for c in chunks:
            if c.type == "equal":
                continue
            if c.type == "insert":
                err[base + 2 * c.ref_start_idx] += c.hyp_end_idx - c.hyp_start_idx
            else:
                err[base + 2 * np.arange(c.ref_start_idx, c.ref_end_idx) + 1] += 1
    return err


def mapsswe_segments(sa: dict, sb: dict, mode: str = "sclite") -> tuple[np.ndarray, np.ndarray]:
    """Per-segment error counts of two score() results on the same references.

    mode "utterance": one segment per utterance. mode "sclite": as NIST sclite, utterances are
    cut wherever both systems recognise at least two consecutive reference words correctly
    with nothing inserted between them; the stretches between such cuts are the segments, and
    those where neither system errs are dropped.
    """
    if sa["_align"].ids != sb["_align"].ids:
        raise ValueError("the two results are not on the same utterances")
    if mode == "utterance":
        return sa["_arrays"]["errors"].copy(), sb["_arrays"]["errors"].copy()
    if mode != "sclite":
        raise ValueError(f"unknown MAPSSWE segmentation {mode!r} (sclite or utterance)")
    n_words = sa["_arrays"]["words"]
    sizes = 2 * n_words + 1
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    total = int(sizes.sum())
    ea = _position_errors(sa["_align"], offsets, total)
    eb = _position_errors(sb["_align"], offsets, total)
    utt = np.repeat(np.arange(len(sizes)), sizes)
    pos = np.arange(total) - offsets[utt]
    is_word = pos % 2 == 1
    clean = (ea == 0) & (eb == 0)
    triple = np.zeros(total, bool)
    if total >= 3:
        triple[:-2] = (clean[:-2] & clean[1:-1] & clean[2:] & is_word[:-2] & is_word[2:]
                       & (utt[:-2] == utt[2:]))
    sep = triple.copy()
    sep[1:] |= triple[:-1]
    sep[2:] |= triple[:-2]
    start = ~sep & ((pos == 0) | np.concatenate([[True], sep[:-1]]))
    seg = np.cumsum(start) - 1
    keep = ~sep
    n_seg = int(start.sum())
    sa_err = np.bincount(seg[keep], weights=ea[keep], minlength=n_seg)
    sb_err = np.bincount(seg[keep], weights=eb[keep], minlength=n_seg)
    has = (sa_err + sb_err) > 0
    return sa_err[has], sb_err[has]


# -- the verdict ---------------------------------------------------------------------------------
def compare_results(sa: dict, sb: dict, speakers=None, by_speaker: bool = False,
                    n_boot: int = 1000, seed: int = 0, segments: str = "sclite") -> dict:
    """Difference B - A with its bootstrap CI, paired bootstrap and MAPSSWE tests, a verdict."""
    ea, eb = sa["_arrays"]["errors"], sb["_arrays"]["errors"]
    words = sa["_arrays"]["words"]
    pb = paired_bootstrap(ea, eb, words, groups=speakers if by_speaker else None,
                          n_boot=n_boot, seed=seed)
    za, zb = mapsswe_segments(sa, sb, segments)
    mp = {**mapsswe(za, zb), "segmentation": segments}
    v_pb = verdict(pb["delta"], pb["p_value"])
    v_mp = verdict(-mp["mean_diff"], mp["p_value"])  # MAPSSWE's mean is A - B: B better when > 0
    # a difference is claimed only when both tests find it
    overall = v_pb if v_pb == v_mp else "not distinguishable"
    return {"wer_a": sa["wer"], "wer_b": sb["wer"], "delta": pb["delta"],
            "relative": (100.0 * pb["delta"] / sa["wer"]) if sa["wer"] else None,
            "paired_bootstrap": {**pb, "verdict": v_pb}, "mapsswe": {**mp, "verdict": v_mp},
            "verdict": overall, "tests_agree": v_pb == v_mp, "alpha": ALPHA,
            "utterances_b_better": int(np.sum(eb < ea)), "utterances_b_worse": int(np.sum(eb > ea)),
            "utterances_same": int(np.sum(eb == ea))}


def p_text(p: float, n_boot: int | None = None) -> str:
    """'p = 0.0123', or 'p < 0.001' for a bootstrap p-value below its resolution 1/n_boot."""
    if n_boot and p == 0.0:
        return f"p < {1 / n_boot:.2g}"
    return f"p = {p:.4f}" if p >= 1e-4 else f"p = {p:.1e}"


def _verdict_line(c: dict, say: dict) -> str:
    if c["tests_agree"] and c["verdict"] != "not distinguishable":
        return f"verdict: {say[c['verdict']]} (p<{c['alpha']}, both tests agree)"
    if c["tests_agree"]:
        return f"verdict: {say[c['verdict']]} (neither test finds a difference at p<{c['alpha']})"
    return f"verdict: {say['not distinguishable']} (the two tests disagree; more data would settle it)"


def comparison_text(c: dict, sa: dict, sb: dict, names=("A", "B"), files=("", "")) -> str:
    """compare_results() in words: both WERs, the difference, each test's p-value, the verdict."""
    a, b = names
    pb, mp = c["paired_bootstrap"], c["mapsswe"]
    say = {"better": f"{b} is better than {a}", "worse": f"{b} is worse than {a}",
           "not distinguishable": f"{a} and {b} are not distinguishable"}
    rel = f", {c['relative']:+.1f} % relative" if c["relative"] is not None else ""
    w = max(len(a), len(b))
    return "\n".join([
        f"{a.ljust(w)}  WER {fmt_wer(sa)} %  [{sa['wer_lo']:.2f}, {sa['wer_hi']:.2f}]  {files[0]}",
        f"{b.ljust(w)}  WER {fmt_wer(sb)} %  [{sb['wer_lo']:.2f}, {sb['wer_hi']:.2f}]  {files[1]}",
        f"{b} - {a}: {c['delta']:+.2f} WER points (95% CI [{pb['lo']:+.2f}, {pb['hi']:+.2f}]{rel}); "
        f"{b} better on {c['utterances_b_better']} utterances, worse on {c['utterances_b_worse']}, "
        f"same on {c['utterances_same']}",
        f"paired bootstrap ({pb['n_boot']} resamples of {pb['units']} {pb['unit']}s): "
        f"{p_text(pb['p_value'], pb['n_boot'])} -> {say[pb['verdict']]} at p<{c['alpha']}",
        f"MAPSSWE ({mp['segmentation']} segments: {mp['segments']}, W = {mp['w']:+.2f}): "
        f"{p_text(mp['p_value'])} -> {say[mp['verdict']]} at p<{c['alpha']}",
        _verdict_line(c, say)])


# -- two files against one reference -------------------------------------------------------------
@dataclass
class Comparison:
    """Two systems scored on one reference (score() results a, b) and compare_results() of them."""

    ref_path: str | Path
    files: tuple
    names: tuple
    a: dict
    b: dict
    result: dict

    def header(self) -> str:
        return (f"reference: {self.ref_path} ({self.a['utterances']} utterances, {self.a['words']} "
                f"words); normalisation: {self.a['normalization']}")

    def text(self) -> str:
        return comparison_text(self.result, self.a, self.b, self.names, self.files)

    def record(self) -> dict:
        """What compare.json holds: both summaries and the comparison."""
        (na, nb), (fa, fb) = self.names, self.files
        return {"reference": str(self.ref_path), "a": {"name": na, "hyp": str(fa), **summary(self.a)},
                "b": {"name": nb, "hyp": str(fb), **summary(self.b)}, **self.result}

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """compare.md (the header and the text) and compare.json into out_dir."""
        out = Path(out_dir)
        md = atomic_write_text(out / "compare.md", f"# Comparison: {self.names[1]} against {self.names[0]}"
                               f"\n\n{self.header()}\n\n```\n{self.text()}\n```\n")
        js = atomic_write_text(out / "compare.json", json.dumps(self.record(), indent=1, ensure_ascii=False))
        return md, js


def compare_files(ref_path: str | Path, hyp_a: str | Path, hyp_b: str | Path, names=("A", "B"),
                  fmt: str | None = None, ref_fmt: str | None = None, hyp_fmt: str | None = None,
                  utt2spk: str | Path | None = None, subset_key: str = "subset", normalizer=None,
                  by_speaker: bool = False, n_boot: int = 1000, seed: int = 0,
                  segments: str = "sclite", by_characters: bool = False) -> Comparison:
    """Score hyp_a and hyp_b against ref_path (read once) and compare them.

    fmt: format of every file, ref_fmt / hyp_fmt: of the reference / the hypotheses only
    (None: detected); the bootstrap settings serve both the CIs and the paired test;
    by_characters: compare character error rates (scripts without spaces).
    """
    ref = read_transcripts(ref_path, ref_fmt or fmt, subset_key, utt2spk)
    opts = {"normalizer": normalizer, "by_speaker": by_speaker, "n_boot": n_boot, "seed": seed,
            "by_characters": by_characters}
    sa, sb = (score_transcripts(ref, read_transcripts(h, hyp_fmt or fmt, subset_key, hypotheses=True), **opts)
              for h in (hyp_a, hyp_b))
    c = compare_results(sa, sb, speakers=sa["_speakers"], by_speaker=by_speaker, n_boot=n_boot,
                        seed=seed, segments=segments)
    return Comparison(ref_path, (hyp_a, hyp_b), tuple(names), sa, sb, c)
