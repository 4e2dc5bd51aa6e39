"""WER/CER with jiwer, and a small report: numbers per split, the worst utterances."""

from __future__ import annotations

import json
from pathlib import Path

import jiwer


def read_texts(path: str | Path) -> dict[str, str]:
    """id -> text from a JSONL manifest or hypothesis file."""
    texts = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    e = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
                key = e.get("id") or Path(e.get("audio_filepath", "")).stem
                texts[key] = e.get("text", "")
    return texts


def score(refs: dict[str, str], hyps: dict[str, str]) -> dict:
    """WER and CER over the utterances in refs (a missing hypothesis counts as empty).

    Returns counts and rates in percent, plus per-utterance error counts sorted worst first.
    """
    ids = list(refs)
    if not ids:
        raise ValueError("no reference utterances to score")
    ref_list = [refs[i] for i in ids]
    hyp_list = [hyps.get(i, "") for i in ids]
    words = jiwer.process_words(ref_list, hyp_list)
    chars = jiwer.process_characters(ref_list, hyp_list)
    n_words = sum(len(r.split()) for r in ref_list)
    n_chars = sum(len(r) for r in ref_list)
    w_err = words.substitutions + words.deletions + words.insertions
    c_err = chars.substitutions + chars.deletions + chars.insertions
    per_utt = []
    for i, (r, h) in enumerate(zip(ref_list, hyp_list)):
        a = words.alignments[i]
        errs = sum(max(c.ref_end_idx - c.ref_start_idx, c.hyp_end_idx - c.hyp_start_idx)
                   for c in a if c.type != "equal")
        per_utt.append({"id": ids[i], "ref": r, "hyp": h, "errors": errs, "words": len(r.split())})
    per_utt.sort(key=lambda u: (-u["errors"], u["id"]))
    return {"utterances": len(ids), "missing": sum(i not in hyps for i in ids),
            "words": n_words, "wer": 100.0 * w_err / max(n_words, 1),
            "sub": words.substitutions, "del": words.deletions, "ins": words.insertions,
            "chars": n_chars, "cer": 100.0 * c_err / max(n_chars, 1), "per_utt": per_utt}


def score_files(ref_path: str | Path, hyp_path: str | Path) -> dict:
    return score(read_texts(ref_path), read_texts(hyp_path))


def results_table(rows: list[dict]) -> str:
    """Markdown table of split | decoder | WER | CER | S/D/I | words."""
    lines = ["| split | decoder | utts | WER % | CER % | sub | del | ins | words |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['split']} | {r['decoder']} | {r['utterances']} | {r['wer']:.2f} | "
                     f"{r['cer']:.2f} | {r['sub']} | {r['del']} | {r['ins']} | {r['words']} |")
    return "\n".join(lines)


def write_report(path: str | Path, rows: list[dict], worst: int = 10) -> str:
    """report.md: the results table, then the worst utterances of each split."""
    parts = ["# Results", "", results_table(rows), ""]
    for r in rows:
        parts += [f"## Worst utterances: {r['split']} ({r['decoder']})", "",
                  "| id | errors/words | reference | hypothesis |", "|---|---|---|---|"]
        for u in r["per_utt"][:worst]:
            parts.append(f"| {u['id']} | {u['errors']}/{u['words']} | {u['ref']} | {u['hyp']} |")
        parts.append("")
    text = "\n".join(parts)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text, encoding="utf-8")
    return text
