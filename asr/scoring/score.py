"""WER/CER/SER of any reference/hypothesis pair, with error analysis and confidence intervals.

Inputs (`read_transcripts`, format auto-detected, or forced with ``fmt``):

- JSON Lines manifests / hypotheses: ``{"id", "text", "speaker"?, "audio_filepath"?, ...}``
  (``.jsonl``/``.json``; an entry without ``id`` is keyed by its audio file's stem)
- Kaldi ``text`` files: ``uttid word word ...`` (any other extension), speakers from ``utt2spk``
- sclite ``trn`` files: ``word word ... (uttid)`` (``.trn``); the speaker is the part of the
  id before the first ``-`` or ``_`` (sclite's ``(spk-utt)`` convention)

`score` aligns every utterance with jiwer (one `jiwer.process_words` call over all of them,
rapidfuzz's C Levenshtein underneath), counts characters with rapidfuzz's batched
Levenshtein distance, and adds per-utterance counts, the most frequent confusions, breakdowns
by speaker / subset / length, and bootstrap confidence intervals (`asr.scoring.stats`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import jiwer
import numpy as np

from asr.scoring.stats import bootstrap_ci

FORMATS = ("jsonl", "kaldi", "trn")
LENGTH_BINS = [(0, 0), (1, 4), (5, 9), (10, 14), (15, 19), (20, 29), (30, 49), (50, None)]
_TRN_LINE = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*$")


# -- reading -----------------------------------------------------------------------------------
@dataclass
class Transcripts:
    """Texts of one file keyed by utterance id, with speakers / subsets / durations where known."""

    texts: dict[str, str] = field(default_factory=dict)
    speakers: dict[str, str] = field(default_factory=dict)
    subsets: dict[str, str] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    format: str = "jsonl"
    path: str = ""


def detect_format(path: str | Path) -> str:
    """'jsonl' for .jsonl/.json, 'trn' for .trn, else sniffed: '{' -> jsonl, '... (id)' -> trn,
    otherwise Kaldi text."""
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".json"):
        return "jsonl"
    if suffix == ".trn":
        return "trn"
    lines = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                lines.append(line.strip())
                if len(lines) == 5:
                    break
    if lines and lines[0].startswith("{"):
        return "jsonl"
    if lines and all(_TRN_LINE.match(x) for x in lines):
        return "trn"
    return "kaldi"


def trn_speaker(utt_id: str) -> str:
    """sclite convention: the speaker is the part of the id before the first '-' or '_'."""
    m = re.match(r"^([^-_]+)[-_]", utt_id)
    return m.group(1) if m else ""


def read_utt2spk(path: str | Path) -> dict[str, str]:
    out = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise ValueError(f"{path}:{lineno}: expected 'uttid speaker'")
            out[parts[0]] = parts[1]
    return out


def read_transcripts(path: str | Path, fmt: str | None = None, subset_key: str = "subset",
                     utt2spk: str | Path | None = None) -> Transcripts:
    """Read a JSONL manifest/hypothesis file, a Kaldi text file or an sclite trn file."""
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown transcript format {fmt!r} (choose from {', '.join(FORMATS)})")
    t = Transcripts(format=fmt, path=str(path))

    def add(key: str, text: str, lineno: int) -> None:
        if key in t.texts:
            raise ValueError(f"{path}:{lineno}: duplicate utterance id {key!r}")
        t.texts[key] = text

    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            if fmt == "jsonl":
                try:
                    e = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
                if not isinstance(e, dict):
                    raise ValueError(f"{path}:{lineno}: expected a JSON object")
                key = e.get("id") or Path(e.get("audio_filepath") or "").stem
                if not key:
                    raise ValueError(f"{path}:{lineno}: entry has neither 'id' nor 'audio_filepath'")
                key = str(key)
                add(key, e.get("text") or "", lineno)
                if e.get("speaker") not in (None, ""):
                    t.speakers[key] = str(e["speaker"])
                if subset_key and e.get(subset_key) not in (None, ""):
                    t.subsets[key] = str(e[subset_key])
                if isinstance(e.get("duration"), (int, float)):
                    t.durations[key] = float(e["duration"])
            elif fmt == "trn":
                m = _TRN_LINE.match(line.rstrip("\n"))
                if not m:
                    raise ValueError(f"{path}:{lineno}: not an sclite trn line 'text (uttid)'")
                key = m.group(2).strip()
                add(key, m.group(1), lineno)
                spk = trn_speaker(key)
                if spk:
                    t.speakers[key] = spk
            else:
                parts = line.split(None, 1)
                add(parts[0], parts[1].strip() if len(parts) > 1 else "", lineno)
    if utt2spk:
        t.speakers.update(read_utt2spk(utt2spk))
    return t


def read_texts(path: str | Path, fmt: str | None = None) -> dict[str, str]:
    """id -> text from a JSONL manifest/hypothesis file (or a Kaldi text / sclite trn file)."""
    return read_transcripts(path, fmt).texts


# -- scoring -----------------------------------------------------------------------------------
@dataclass
class Alignment:
    """What rendering alignments needs: the word lists and jiwer's chunks, in `ids` order."""

    ids: list
    ref: list
    hyp: list
    chunks: list


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


def score(refs: dict[str, str], hyps: dict[str, str], normalizer=None,
          speakers: dict[str, str] | None = None, subsets: dict[str, str] | None = None,
          by_speaker: bool = False, n_boot: int = 1000, seed: int = 0, top: int = 50) -> dict:
    """WER, CER and SER over the utterances in refs (a missing hypothesis counts as empty).

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
    split = getattr(normalizer, "tokens", None)
    if split is None:
        split = (lambda s: normalizer(s).split()) if normalizer else str.split
    ref_tok = [split(refs[i] or "") for i in ids]
    hyp_tok = [split(hyps.get(i) or "") for i in ids]
    ref_text, hyp_text = [" ".join(t) for t in ref_tok], [" ".join(t) for t in hyp_tok]
    out = jiwer.process_words(ref_text, hyp_text, reference_transform=lambda _: ref_tok,
                              hypothesis_transform=lambda _: hyp_tok)
    n = len(ids)
    sub = np.zeros(n, np.int64)
    dele = np.zeros(n, np.int64)
    ins = np.zeros(n, np.int64)
    c_sub: Counter = Counter()
    c_del: Counter = Counter()
    c_ins: Counter = Counter()
    for u, chunks in enumerate(out.alignments):
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
    words = np.fromiter((len(t) for t in ref_tok), np.int64, n)
    hyp_words = np.fromiter((len(t) for t in hyp_tok), np.int64, n)
    errors = sub + dele + ins
    chars = np.fromiter((len(t) for t in ref_text), np.int64, n)
    char_errors = _char_distances(ref_text, hyp_text)
    arrays = {"errors": errors, "words": words, "sub": sub, "del": dele, "ins": ins,
              "hyp_words": hyp_words, "chars": chars, "char_errors": char_errors}

    spk = [(speakers or {}).get(i, "") for i in ids]
    have_spk = speakers is not None and any(spk)
    if by_speaker and not have_spk:
        raise ValueError("--by-speaker needs speakers (manifest 'speaker' key, trn ids or --utt2spk)")
    ci = bootstrap_ci(errors, words, groups=spk if by_speaker else None, n_boot=n_boot, seed=seed)
    n_words, n_err = int(words.sum()), int(errors.sum())
    n_chars, c_err = int(chars.sum()), int(char_errors.sum())
    sent_err = int(np.count_nonzero(errors))

    sub_l, del_l, ins_l = sub.tolist(), dele.tolist(), ins.tolist()
    per_utt = [{"id": ids[i], "ref": ref_text[i], "hyp": hyp_text[i], "errors": sub_l[i] + del_l[i] + ins_l[i],
                "words": len(ref_tok[i]), "sub": sub_l[i], "del": del_l[i], "ins": ins_l[i], "idx": i}
               for i in range(n)]
    per_utt.sort(key=lambda u: (-u["errors"], u["id"]))

    result = {"utterances": n, "missing": sum(i not in hyps for i in ids),
              "extra": sum(1 for i in hyps if i not in refs),
              "words": n_words, "hyp_words": int(hyp_words.sum()), "errors": n_err,
              "wer": _rate(n_err, n_words), "wer_lo": ci["lo"], "wer_hi": ci["hi"],
              "wer_ci": ci["half_width"], "ci": {k: ci[k] for k in ("level", "n_boot", "unit", "units")},
              "sub": int(sub.sum()), "del": int(dele.sum()), "ins": int(ins.sum()),
              "hits": n_words - int(sub.sum()) - int(dele.sum()),
              "chars": n_chars, "char_errors": c_err, "cer": _rate(c_err, n_chars),
              "sent_errors": sent_err, "ser": 100.0 * sent_err / n,
              "normalization": normalizer.describe() if hasattr(normalizer, "describe") else "none",
              "per_utt": per_utt,
              "confusions": {"sub": [[a, b, k] for (a, b), k in c_sub.most_common(top)],
                             "del": [[a, k] for a, k in c_del.most_common(top)],
                             "ins": [[a, k] for a, k in c_ins.most_common(top)]}}
    result["by_length"] = group_table([length_bin(k) for k in words.tolist()], arrays, n_boot, seed,
                                      order=[length_bin(lo) for lo, _ in LENGTH_BINS])
    result["by_speaker"] = group_table(spk, arrays, n_boot, seed) if have_spk else []
    sset = [(subsets or {}).get(i, "") for i in ids]
    result["by_subset"] = group_table(sset, arrays, n_boot, seed) if any(sset) else []
    result["_align"] = Alignment(ids, ref_tok, hyp_tok, out.alignments)
    result["_arrays"] = arrays
    result["_speakers"] = spk
    return result


def score_files(ref_path: str | Path, hyp_path: str | Path, fmt: str | None = None,
                hyp_fmt: str | None = None, utt2spk: str | Path | None = None,
                subset_key: str = "subset", **kwargs) -> dict:
    """score() of two files (formats auto-detected); speakers/subsets come from the reference."""
    ref = read_transcripts(ref_path, fmt, subset_key=subset_key, utt2spk=utt2spk)
    hyp = read_transcripts(hyp_path, hyp_fmt or fmt, subset_key=subset_key)
    kwargs.setdefault("speakers", ref.speakers or None)
    kwargs.setdefault("subsets", ref.subsets or None)
    return score(ref.texts, hyp.texts, **kwargs)


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
    with open(path, "w", encoding="utf-8") as f:
        for u in range(len(s["_align"].ids)):
            f.write(format_alignment(s, u, spk[u] if u < len(spk) else "") + "\n\n")


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


# -- tables and report.md ------------------------------------------------------------------------
def fmt_wer(r: dict, key: str = "wer") -> str:
    """'12.34 ± 0.56' (95% bootstrap half-width) when the row has a CI, else '12.34'."""
    ci = r.get(f"{key}_ci")
    return f"{r[key]:.2f}" if ci is None else f"{r[key]:.2f} ± {ci:.2f}"


def results_table(rows: list[dict]) -> str:
    """Markdown table: split | decoder | [checkpoint] | utts | WER ± CI | CER | SER | S/D/I | words | [RTF]."""
    ckpt = any("checkpoint" in r for r in rows)
    rtf = any("rtf" in r for r in rows)
    head = ["split", "decoder"] + (["checkpoint"] if ckpt else []) + [
        "utts", "WER % ± 95% CI", "CER %", "SER %", "sub", "del", "ins", "words"] + (["RTF"] if rtf else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["split"], r["decoder"]] + ([r.get("checkpoint", "")] if ckpt else []) + [
            r["utterances"], fmt_wer(r), f"{r['cer']:.2f}",
            f"{r['ser']:.1f}" if "ser" in r else "", r["sub"], r["del"], r["ins"], r["words"]]
        if rtf:
            cells.append(f"{r['rtf']:.3f}" if r.get("rtf") is not None else "")
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def write_report(path: str | Path, rows: list[dict], worst: int = 10) -> str:
    """report.md: the results table, then per split the top confusions and worst utterances."""
    parts = ["# Results", "", results_table(rows), "",
             "WER ± is the half-width of a 95% bootstrap confidence interval (1000 resamples of "
             "utterances).", ""]
    for r in rows:
        conf = r.get("confusions")
        if conf and (conf["sub"] or conf["del"] or conf["ins"]):
            parts += [f"## Top confusions: {r['split']} ({r['decoder']})", "",
                      "| substitutions (ref → hyp) | deletions | insertions |", "|---|---|---|"]
            for k in range(min(10, max(len(conf["sub"]), len(conf["del"]), len(conf["ins"])))):
                s_ = f"{conf['sub'][k][0]} → {conf['sub'][k][1]} ({conf['sub'][k][2]})" if k < len(conf["sub"]) else ""
                d_ = f"{conf['del'][k][0]} ({conf['del'][k][1]})" if k < len(conf["del"]) else ""
                i_ = f"{conf['ins'][k][0]} ({conf['ins'][k][1]})" if k < len(conf["ins"]) else ""
                parts.append(f"| {s_} | {d_} | {i_} |")
            parts.append("")
        parts += [f"## Worst utterances: {r['split']} ({r['decoder']})", "",
                  "| id | errors/words | reference | hypothesis |", "|---|---|---|---|"]
        for u in r["per_utt"][:worst]:
            parts.append(f"| {u['id']} | {u['errors']}/{u['words']} | {u['ref']} | {u['hyp']} |")
        parts.append("")
    text = "\n".join(parts)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text, encoding="utf-8")
    return text
