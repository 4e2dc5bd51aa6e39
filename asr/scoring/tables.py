"""Score results as text: the WER ± CI figure, the terminal summary of one result, and the
markdown results table / report.md over several (split, decoder) results."""

from __future__ import annotations

from pathlib import Path

from asr.utils import atomic_write_text


MIN_CI_UNITS = 20  # fewer resampled utterances (or speakers) than this: the CI is a rough guess


def fmt_wer(r: dict, key: str = "wer") -> str:
    """'12.34 ± 0.56' (95% bootstrap half-width) when the row has a CI, else '12.34'."""
    ci = r.get(f"{key}_ci")
    return f"{r[key]:.2f}" if ci is None else f"{r[key]:.2f} ± {ci:.2f}"


def rate_name(r: dict) -> str:
    """"CER" for results scored by characters (scripts without spaces), else "WER"."""
    return "CER" if r.get("unit") == "character" else "WER"


def summary_text(s: dict) -> str:
    """A score() result in a few lines: WER with CI, S/D/I, CER, SER, inputs, top confusions
    (CER first, with the CI, for results scored by characters)."""
    ci = s["ci"]
    by_chars = s.get("unit") == "character"
    also = "" if by_chars else f"CER {s['cer']:.2f} %; "
    # the interval itself: a percentile bootstrap interval is not symmetric about the rate
    lines = [f"{rate_name(s)} {s['wer']:.2f} % (95% CI [{s['wer_lo']:.2f}, {s['wer_hi']:.2f}], "
             f"{ci['n_boot']} bootstrap resamples of {ci['units']} {ci['unit']}s)",
             f"    {s['sub']} sub, {s['del']} del, {s['ins']} ins of {s['words']} reference "
             f"{s.get('unit', 'word')}s; {also}SER {s['ser']:.1f} % ({s['sent_errors']} of "
             f"{s['utterances']} utterances)",
             f"    normalisation: {s['normalization']}; missing hypotheses (scored as empty): "
             f"{s['missing']}; hypotheses without a reference (ignored): {s['extra']}"]
    if ci["units"] < MIN_CI_UNITS:
        lines.append(f"    warning: {ci['units']} {ci['unit']}(s) are too few for a meaningful "
                     f"interval (score at least {MIN_CI_UNITS})")
    c = s["confusions"]
    for name, items in (("substitutions", [f"{a}→{b} ({k})" for a, b, k in c["sub"][:5]]),
                        ("deletions", [f"{a} ({k})" for a, k in c["del"][:5]]),
                        ("insertions", [f"{a} ({k})" for a, k in c["ins"][:5]])):
        if items:
            lines.append(f"    top {name}: {', '.join(items)}")
    return "\n".join(lines)


def results_table(rows: list[dict]) -> str:
    """Markdown table: split | decoder | [checkpoint] | utts | WER ± CI | CER | SER | S/D/I | words | [RTF].
    Rows scored by characters (scripts without spaces) say so: their CER is the one with the CI."""
    ckpt = any("checkpoint" in r for r in rows)
    rtf = any("rtf" in r for r in rows)
    by_chars = bool(rows) and all(r.get("unit") == "character" for r in rows)
    rate, count = ("CER % ± 95% CI", "chars") if by_chars else ("WER % ± 95% CI", "words")
    head = ["split", "decoder"] + (["checkpoint"] if ckpt else []) + [
        "utts", rate, "CER %", "SER %", "sub", "del", "ins", count] + (["RTF"] if rtf else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["split"], r["decoder"]] + ([r.get("checkpoint", "")] if ckpt else []) + [
            r["utterances"], fmt_wer(r), f"{r['cer']:.2f}",
            f"{r['ser']:.1f}" if "ser" in r else "", r["sub"], r["del"], r["ins"], r["words"]]
        if rtf:
            cells.append(f"{r['rtf']:.3f}" if r.get("rtf") is not None else "")
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def _confusion_section(r: dict) -> list[str]:
    """Top 10 substitutions, deletions and insertions side by side; nothing when there are none."""
    conf = r.get("confusions")
    if not conf or not (conf["sub"] or conf["del"] or conf["ins"]):
        return []
    parts = [f"## Top confusions: {r['split']} ({r['decoder']})", "",
             "| substitutions (ref → hyp) | deletions | insertions |", "|---|---|---|"]
    for k in range(min(10, max(len(conf["sub"]), len(conf["del"]), len(conf["ins"])))):
        s_ = f"{conf['sub'][k][0]} → {conf['sub'][k][1]} ({conf['sub'][k][2]})" if k < len(conf["sub"]) else ""
        d_ = f"{conf['del'][k][0]} ({conf['del'][k][1]})" if k < len(conf["del"]) else ""
        i_ = f"{conf['ins'][k][0]} ({conf['ins'][k][1]})" if k < len(conf["ins"]) else ""
        parts.append(f"| {s_} | {d_} | {i_} |")
    return parts + [""]


def _worst_section(r: dict, worst: int) -> list[str]:
    parts = [f"## Worst utterances: {r['split']} ({r['decoder']})", "",
             "| id | errors/words | reference | hypothesis |", "|---|---|---|---|"]
    for u in r["per_utt"][:worst]:
        parts.append(f"| {u['id']} | {u['errors']}/{u['words']} | {u['ref']} | {u['hyp']} |")
    return parts + [""]


def write_report(path: str | Path, rows: list[dict], worst: int = 10) -> str:
    """report.md: the results table, then per split the top confusions and worst utterances."""
    parts = ["# Results", "", results_table(rows), "",
             f"{rate_name(rows[0]) if rows else 'WER'} ± is the half-width of a 95% bootstrap "
             "confidence interval (1000 resamples of utterances).", ""]
    for r in rows:
        parts += _confusion_section(r) + _worst_section(r, worst)
    text = "\n".join(parts)
    atomic_write_text(path, text)
    return text
