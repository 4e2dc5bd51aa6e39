"""WER/CER/SER of any reference/hypothesis pair, with error analysis and confidence intervals,
and sclite-style alignments of the scored utterances.

`score` aligns every utterance with jiwer (one `jiwer.process_words` call over all of them,
rapidfuzz's C Levenshtein underneath), counts characters with rapidfuzz's batched
Levenshtein distance, and adds per-utterance counts, the most frequent confusions, breakdowns
by speaker / subset / length, and bootstrap confidence intervals (`asr.scoring.stats`).
`score_files` reads the inputs first (`asr.scoring.readers`); `wer` is the bare corpus WER.
jiwer is called in this package only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import jiwer
import numpy as np

from asr.scoring.readers import Transcripts, read_transcripts
from asr.scoring.stats import bootstrap_ci
from asr.utils import atomic_open

LENGTH_BINS = [(0, 0), (1, 4), (5, 9), (10, 14), (15, 19), (20, 29), (30, 49), (50, None)]


@dataclass
class Alignment:
    """What rendering alignments needs: the word lists and jiwer's chunks, in `ids` order."""

    ids: list
    ref: list
    hyp: list
    chunks: list


def wer(refs: list[str], hyps: list[str]) -> float:
    """Corpus WER (%) over the utterances with a non-empty reference."""
    pairs = [(r, h) for r, h in zip(refs, hyps) if r.strip()]
    return 100 * jiwer.wer([r for r, _ in pairs], [h for _, h in pairs])


def _char_distances(refs: list[str], hyps: list[str]) -> np.ndarray:
    """Character edit distances (S+D+I), batched in C; the same numbers as jiwer's CER."""
    from rapidfuzz.distance import Levenshtein
    try:
        from rapidfuzz.process import cpdist
    except ImportError:  # rapidfuzz < 3.6
        return np.array([Levenshtein.distance(r, h) for r, h in zip(refs, hyps)], dtype=np.int64)
    if not refs:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(cpdist(refs, hyps, scorer=Levenshtein.distance, workers=1), dtype=np.int64)


def length_bin(n: int) -> str:
    for lo, hi in LENGTH_BINS:
        if n >= lo and (hi is None or n <= hi):
            return "0 (empty)" if hi == 0 else (f"{lo}+" if hi is None else f"{lo}-{hi}")
    raise AssertionError


def _rate(err, n) -> float:
    return 100.0 * err / n if n else (0.0 if err == 0 else float("inf"))


def group_table(labels, arrays: dict, n_boot: int, seed: int, order=None) -> list[dict]:
    """Per-group counts, WER with bootstrap CI, CER and SER. labels: one label per utterance."""
    labels = np.asarray(labels, dtype=object)
    names, codes = np.unique(labels.astype(str), return_inverse=True)
    idx_sorted = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[idx_sorted], np.arange(len(names) + 1))
    rows = []
    for g, name in enumerate(names):
        idx = idx_sorted[bounds[g]:bounds[g + 1]]
        e, w = arrays["errors"][idx], arrays["words"][idx]
        ci = bootstrap_ci(e, w, n_boot=n_boot, seed=seed)
        rows.append({"name": str(name), "utterances": len(idx), "words": int(w.sum()),
                     "errors": int(e.sum()), "sub": int(arrays["sub"][idx].sum()),
                     "del": int(arrays["del"][idx].sum()), "ins": int(arrays["ins"][idx].sum()),
                     "wer": ci["wer"], "wer_lo": ci["lo"], "wer_hi": ci["hi"],
                     "wer_ci": ci["half_width"],
                     "cer": _rate(int(arrays["char_errors"][idx].sum()), int(arrays["chars"][idx].sum())),
                     "ser": 100.0 * float(np.mean(e > 0))})
    if order is not None:
        rank = {n: i for i, n in enumerate(order)}
        rows.sort(key=lambda r: rank.get(r["name"], len(rank)))
    return rows


def _tokenizer(normalizer, by_characters: bool = False):
    """text -> words: the normalizer's own tokenizer, else its output split on white space;
    by_characters: the characters of those words instead (scripts written without spaces)."""
    split = getattr(normalizer, "tokens", None)
    if split is None:
        split = (lambda s: normalizer(s).split()) if normalizer else str.split
    if by_characters:
        return lambda s: list("".join(split(s)))
    return split


def _count_edits(alignments: list, ref_tok: list, hyp_tok: list):
    """Per-utterance S/D/I counts (arrays) and the confused / deleted / inserted words (Counters)."""
    n = len(ref_tok)
    sub = np.zeros(n, np.int64)
    dele = np.zeros(n, np.int64)
    ins = np.zeros(n, np.int64)
    c_sub: Counter = Counter()
    c_del: Counter = Counter()
    c_ins: Counter = Counter()
    for u, chunks in enumerate(alignments):
        if len(chunks) == 1 and chunks[0].type == "equal":
            continue
        r, h = ref_tok[u], hyp_tok[u]
        for c in chunks:
            t = c.type
            if t == "equal":
                continue
            if t == "substitute":
                sub[u] += c.ref_end_idx - c.ref_start_idx
                c_sub.update(zip(r[c.ref_start_idx:c.ref_end_idx], h[c.hyp_start_idx:c.hyp_end_idx]))
            elif t == "delete":
                dele[u] += c.ref_end_idx - c.ref_start_idx
                c_del.update(r[c.ref_start_idx:c.ref_end_idx])
            else:
                ins[u] += c.hyp_end_idx - c.hyp_start_idx
                c_ins.update(h[c.hyp_start_idx:c.hyp_end_idx])
    return (sub, dele, ins), (c_sub, c_del, c_ins)


def _confusions(counters: tuple, top: int) -> dict:
    c_sub, c_del, c_ins = counters
    return {"sub": [[a, b, k] for (a, b), k in c_sub.most_common(top)],
            "del": [[a, k] for a, k in c_del.most_common(top)],
            "ins": [[a, k] for a, k in c_ins.most_common(top)]}


def _utterance_arrays(counts: tuple, ref_tok: list, hyp_tok: list, ref_text: list, hyp_text: list) -> dict:
    """The per-utterance count arrays every total, group and test is computed from."""
    sub, dele, ins = counts
    n = len(ref_tok)
    return {"errors": sub + dele + ins, "words": np.fromiter((len(t) for t in ref_tok), np.int64, n),
            "sub": sub, "del": dele, "ins": ins,
            "hyp_words": np.fromiter((len(t) for t in hyp_tok), np.int64, n),
            "chars": np.fromiter((len(t) for t in ref_text), np.int64, n),
            "char_errors": _char_distances(ref_text, hyp_text)}


def _totals(a: dict, ci: dict) -> dict:
    """Corpus counts and rates, in the key order of score()'s result."""
    n_words, n_err = int(a["words"].sum()), int(a["errors"].sum())
    n_chars, c_err = int(a["chars"].sum()), int(a["char_errors"].sum())
    n_sub, n_del = int(a["sub"].sum()), int(a["del"].sum())
    sent_err = int(np.count_nonzero(a["errors"]))
    return {"words": n_words, "hyp_words": int(a["hyp_words"].sum()), "errors": n_err,
            "wer": _rate(n_err, n_words), "wer_lo": ci["lo"], "wer_hi": ci["hi"],
            "wer_ci": ci["half_width"], "ci": {k: ci[k] for k in ("level", "n_boot", "unit", "units")},
            "sub": n_sub, "del": n_del, "ins": int(a["ins"].sum()), "hits": n_words - n_sub - n_del,
            "chars": n_chars, "char_errors": c_err, "cer": _rate(c_err, n_chars),
            "sent_errors": sent_err, "ser": 100.0 * sent_err / len(a["errors"])}


def _per_utt(ids: list, ref_text: list, hyp_text: list, ref_tok: list, counts: tuple) -> list[dict]:
    """Per-utterance counts, worst first ("idx" is the position in reference order)."""
    sub_l, del_l, ins_l = (c.tolist() for c in counts)
    per_utt = [{"id": ids[i], "ref": ref_text[i], "hyp": hyp_text[i], "errors": sub_l[i] + del_l[i] + ins_l[i],
                "words": len(ref_tok[i]), "sub": sub_l[i], "del": del_l[i], "ins": ins_l[i], "idx": i}
               for i in range(len(ids))]
    per_utt.sort(key=lambda u: (-u["errors"], u["id"]))
    return per_utt


def score(refs: dict[str, str], hyps: dict[str, str], normalizer=None,
          speakers: dict[str, str] | None = None, subsets: dict[str, str] | None = None,
          by_speaker: bool = False, n_boot: int = 1000, seed: int = 0, top: int = 50,
          by_characters: bool = False) -> dict:
    """WER, CER and SER over the utterances in refs (a missing hypothesis counts as empty).

    by_characters: score characters, not words (scripts written without spaces: Chinese,
    Japanese, Thai; spaces are ignored): every word count, alignment, confusion and CI is then
    over characters, "wer" is the CER, and "unit" says "character" (else "word").

    normalizer: a callable applied to both sides (`asr.text.normalize.Normalizer`); white space is
    always collapsed. speakers / subsets: id -> label, for breakdowns; with by_speaker the
    bootstrap resamples speakers rather than utterances. Rates are in percent. Returns counts
    and rates, "wer_lo"/"wer_hi"/"wer_ci" (95% CI bounds and half-width), per-utterance counts
    sorted worst first ("per_utt"), the most frequent confusions, and breakdowns by length,
    speaker and subset. The key "_align" holds the alignment itself (for reports; not JSON).
    """
    ids = list(refs)
    if not ids:
        raise ValueError("no reference utterances to score")
    split = _tokenizer(normalizer, by_characters)
    ref_tok = [split(refs[i] or "") for i in ids]
    hyp_tok = [split(hyps.get(i) or "") for i in ids]
    join = "".join if by_characters else " ".join
    ref_text, hyp_text = [join(t) for t in ref_tok], [join(t) for t in hyp_tok]
    # the words are already split: jiwer gets them through the transforms instead of re-splitting
    out = jiwer.process_words(ref_text, hyp_text, reference_transform=lambda _: ref_tok,
                              hypothesis_transform=lambda _: hyp_tok)
    counts, counters = _count_edits(out.alignments, ref_tok, hyp_tok)
    arrays = _utterance_arrays(counts, ref_tok, hyp_tok, ref_text, hyp_text)

    spk = [(speakers or {}).get(i, "") for i in ids]
    have_spk = speakers is not None and any(spk)
    if by_speaker and not have_spk:
        raise ValueError("--by-speaker needs speakers (manifest 'speaker' key, trn ids or --utt2spk)")
    ci = bootstrap_ci(arrays["errors"], arrays["words"], groups=spk if by_speaker else None,
                      n_boot=n_boot, seed=seed)
    result = {"unit": "character" if by_characters else "word",
              "utterances": len(ids), "missing": sum(i not in hyps for i in ids),
              "extra": sum(1 for i in hyps if i not in refs), **_totals(arrays, ci),
              "normalization": normalizer.describe() if hasattr(normalizer, "describe") else "none",
              "per_utt": _per_utt(ids, ref_text, hyp_text, ref_tok, counts),
              "confusions": _confusions(counters, top)}
    result["by_length"] = group_table([length_bin(k) for k in arrays["words"].tolist()], arrays, n_boot,
                                      seed, order=[length_bin(lo) for lo, _ in LENGTH_BINS])
    result["by_speaker"] = group_table(spk, arrays, n_boot, seed) if have_spk else []
    sset = [(subsets or {}).get(i, "") for i in ids]
    result["by_subset"] = group_table(sset, arrays, n_boot, seed) if any(sset) else []
    result["_align"] = Alignment(ids, ref_tok, hyp_tok, out.alignments)
    result["_arrays"] = arrays
    result["_speakers"] = spk
    return result


def score_transcripts(ref: Transcripts, hyp: Transcripts, **kwargs) -> dict:
    """score() of two read files; speakers and subsets come from the reference."""
    kwargs.setdefault("speakers", ref.speakers or None)
    kwargs.setdefault("subsets", ref.subsets or None)
    return score(ref.texts, hyp.texts, **kwargs)


def score_files(ref_path: str | Path, hyp_path: str | Path, fmt: str | None = None,
                hyp_fmt: str | None = None, utt2spk: str | Path | None = None,
                subset_key: str = "subset", ref_fmt: str | None = None, **kwargs) -> dict:
    """score() of two files; speakers/subsets come from the reference.

    fmt: format of both files, ref_fmt / hyp_fmt: of one only (None: detected).
    """
    ref = read_transcripts(ref_path, ref_fmt or fmt, subset_key=subset_key, utt2spk=utt2spk)
    hyp = read_transcripts(hyp_path, hyp_fmt or fmt, subset_key=subset_key, hypotheses=True)
    return score_transcripts(ref, hyp, **kwargs)


def summary(s: dict) -> dict:
    """The JSON-serialisable part of a score() result (no alignment, no per-utterance list)."""
    return {k: v for k, v in s.items() if not k.startswith("_") and k != "per_utt"}


# -- alignments, sclite style --------------------------------------------------------------------
def aligned_rows(al: Alignment, u: int) -> tuple[list[str], list[str], list[str]]:
    """REF / HYP / Eval token rows of utterance u (gaps as ***, S/D/I marks), padded to align."""
    ref_row, hyp_row, ev = [], [], []
    r, h = al.ref[u], al.hyp[u]
    for c in al.chunks[u]:
        if c.type == "equal":
            for w in r[c.ref_start_idx:c.ref_end_idx]:
                ref_row.append(w), hyp_row.append(w), ev.append("")
        elif c.type == "substitute":
            for a, b in zip(r[c.ref_start_idx:c.ref_end_idx], h[c.hyp_start_idx:c.hyp_end_idx]):
                ref_row.append(a), hyp_row.append(b), ev.append("S")
        elif c.type == "delete":
            for a in r[c.ref_start_idx:c.ref_end_idx]:
                ref_row.append(a), hyp_row.append("*" * max(3, len(a))), ev.append("D")
        else:
            for b in h[c.hyp_start_idx:c.hyp_end_idx]:
                ref_row.append("*" * max(3, len(b))), hyp_row.append(b), ev.append("I")
    return ref_row, hyp_row, ev


def format_alignment(s: dict, u: int, speaker: str = "") -> str:
    """One utterance the way sclite's .pra shows it."""
    al: Alignment = s["_align"]
    a = s["_arrays"]
    ref_row, hyp_row, ev = aligned_rows(al, u)
    widths = [max(len(x), len(y), len(z)) for x, y, z in zip(ref_row, hyp_row, ev)]
    line = lambda row: " ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip()  # noqa: E731
    hits = int(a["words"][u] - a["sub"][u] - a["del"][u])
    head = f"id: ({al.ids[u]})" + (f"  speaker: {speaker}" if speaker else "")
    return "\n".join([head, f"Scores: (#C #S #D #I) {hits} {a['sub'][u]} {a['del'][u]} {a['ins'][u]}",
                      "REF:  " + line(ref_row), "HYP:  " + line(hyp_row), "Eval: " + line(ev)])


def write_alignments(path: str | Path, s: dict) -> None:
    """Every utterance aligned, sclite .pra style, in reference order."""
    spk = s.get("_speakers") or []
    with atomic_open(path) as f:
        for u in range(len(s["_align"].ids)):
            f.write(format_alignment(s, u, spk[u] if u < len(spk) else "") + "\n\n")
