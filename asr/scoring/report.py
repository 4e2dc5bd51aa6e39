"""Error-analysis reports of a score() result: markdown, a self-contained HTML page, PNG plots,
sclite-style alignments of every utterance, and the numbers as JSON.

`write_all(out_dir, s)` writes::

    report.md          summary, breakdowns (length / speaker / subset), top confusions, worst utterances
    report.html        the same on one page, plots embedded (base64 PNG), text escaped
    alignments.txt     every utterance aligned, sclite .pra style (REF / HYP / Eval rows)
    scores.json        all numbers (no per-utterance lists)
    per_utt.jsonl      per-utterance counts, in reference order
    wer_by_length.png, top_confusions.png, wer_by_speaker.png (with 2+ speakers)

matplotlib is imported here only, lazily, with the Agg backend (no display needed).
Every file is written atomically (`asr.utils`): a crash never leaves a half-written report.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
from pathlib import Path

from asr.scoring.score import aligned_rows, format_alignment, summary, write_alignments
from asr.scoring.tables import fmt_wer
from asr.utils import atomic_open, atomic_path, atomic_write_text

log = logging.getLogger(__name__)

MAX_GROUP_ROWS = 50


def _num(x: float, digits: int = 2) -> str:
    return "inf" if x == float("inf") else f"{x:.{digits}f}"


def _ci(r: dict) -> str:
    return f"{_num(r['wer'])} ± {_num(r['wer_ci'])} [{_num(r['wer_lo'])}, {_num(r['wer_hi'])}]"


# -- tables as (header, rows) so markdown and HTML share them ----------------------------------
def summary_table(s: dict) -> tuple[list[str], list[list]]:
    head = ["utterances", "words", "WER % ± 95% CI [lo, hi]", "CER %", "SER %", "sub", "del",
            "ins", "missing hyps", "extra hyps"]
    return head, [[s["utterances"], s["words"], _ci(s), _num(s["cer"]), _num(s["ser"], 1),
                   s["sub"], s["del"], s["ins"], s["missing"], s.get("extra", 0)]]


def group_rows(groups: list[dict], label: str, sort_by_wer: bool = False) -> tuple[list[str], list[list]]:
    head = [label, "utts", "words", "WER % ± 95% CI", "CER %", "SER %", "sub", "del", "ins"]
    rows = sorted(groups, key=lambda g: -g["wer"]) if sort_by_wer else groups
    return head, [[g["name"], g["utterances"], g["words"], f"{_num(g['wer'])} ± {_num(g['wer_ci'])}",
                   _num(g["cer"]), _num(g["ser"], 1), g["sub"], g["del"], g["ins"]]
                  for g in rows[:MAX_GROUP_ROWS]]


def confusion_rows(s: dict, top: int = 20) -> dict[str, tuple[list[str], list[list]]]:
    c = s["confusions"]
    return {"Substitutions": (["reference", "hypothesis", "count"], [list(x) for x in c["sub"][:top]]),
            "Deletions": (["reference word", "count"], [list(x) for x in c["del"][:top]]),
            "Insertions": (["hypothesis word", "count"], [list(x) for x in c["ins"][:top]])}


def _md_table(head: list[str], rows: list[list]) -> list[str]:
    esc = lambda v: str(v).replace("|", "\\|")  # noqa: E731
    return (["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            + ["| " + " | ".join(esc(v) for v in r) + " |" for r in rows])


def _sections(s: dict) -> list[tuple[str, tuple[list[str], list[list]], str]]:
    """(title, table, note) for each breakdown present."""
    out = [("By utterance length (reference words)", group_rows(s["by_length"], "length"), "")]
    if len(s.get("by_speaker") or []) >= 2:
        n = len(s["by_speaker"])
        out.append(("By speaker", group_rows(s["by_speaker"], "speaker", sort_by_wer=True),
                    f"{n} speakers, worst first" + (f" (top {MAX_GROUP_ROWS})" if n > MAX_GROUP_ROWS else "")))
    if s.get("by_subset"):
        out.append(("By subset", group_rows(s["by_subset"], "subset"), ""))
    return out


def _ci_note(s: dict) -> str:
    ci = s.get("ci", {})
    return (f"± is the half-width of the {int(100 * ci.get('level', 0.95))}% percentile bootstrap "
            f"confidence interval ({ci.get('n_boot', 1000)} resamples of {ci.get('unit', 'utterance')}s; "
            f"{ci.get('units', s['utterances'])} {ci.get('unit', 'utterance')}s).")


def markdown_report(s: dict, title: str = "Scoring report", sources: dict | None = None,
                    worst: int = 20, plots: list[str] | None = None) -> str:
    parts = [f"# {title}", ""]
    for k, v in (sources or {}).items():
        parts.append(f"- {k}: `{v}`")
    parts += [f"- normalisation: {s.get('normalization', 'none')}", "",
              *_md_table(*summary_table(s)), "", _ci_note(s), ""]
    for p in plots or []:
        parts += [f"![{p}]({p})", ""]
    for title_, table, note in _sections(s):
        parts += [f"## {title_}", ""] + ([note, ""] if note else []) + _md_table(*table) + [""]
    parts += ["## Most frequent errors", ""]
    for name, table in confusion_rows(s).items():
        parts += [f"### {name}", ""] + (_md_table(*table) if table[1] else ["(none)"]) + [""]
    parts += [f"## Worst utterances ({min(worst, len(s['per_utt']))} of {s['utterances']}; all in "
              "alignments.txt)", "", "```"]
    spk = s.get("_speakers") or []
    for u in s["per_utt"][:worst]:
        if u["errors"] == 0:
            break
        parts += [format_alignment(s, u["idx"], spk[u["idx"]] if spk else ""), ""]
    parts += ["```", ""]
    return "\n".join(parts)


# -- plots ---------------------------------------------------------------------------------------
def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        log.warning("matplotlib is not installed: no plots (pip install matplotlib)")
        return None


def _bars_with_ci(ax, groups: list[dict], horizontal: bool = False):
    import numpy as np
    names = [g["name"] for g in groups]
    wer = np.array([g["wer"] if np.isfinite(g["wer"]) else 0.0 for g in groups])
    lo = np.array([g["wer_lo"] if np.isfinite(g["wer_lo"]) else 0.0 for g in groups])
    hi = np.array([g["wer_hi"] if np.isfinite(g["wer_hi"]) else 0.0 for g in groups])
    err = np.vstack([np.clip(wer - lo, 0, None), np.clip(hi - wer, 0, None)])
    pos = np.arange(len(groups))
    if horizontal:
        ax.barh(pos, wer, xerr=err, color="#4c72b0", capsize=3)
        ax.set_yticks(pos, names)
        ax.invert_yaxis()
        ax.set_xlabel("WER % (95% CI)")
    else:
        ax.bar(pos, wer, yerr=err, color="#4c72b0", capsize=3)
        ax.set_xticks(pos, names)
        ax.set_ylabel("WER % (95% CI)")
    return pos, wer


def plot_wer_by_length(s: dict, path: Path) -> bool:
    plt = _pyplot()
    groups = [g for g in s["by_length"] if g["utterances"]]
    if plt is None or not groups:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    pos, wer = _bars_with_ci(ax, groups)
    for p, w, g in zip(pos, wer, groups):
        ax.annotate(f"n={g['utterances']}", (p, 0), xytext=(0, 3), textcoords="offset points",
                    ha="center", fontsize=8, color="white" if w > 0 else "black")
    ax.axhline(s["wer"] if s["wer"] != float("inf") else 0, color="#c44e52", ls="--", lw=1,
               label=f"overall {fmt_wer(s)} %")
    ax.set_xlabel("reference length (words)")
    ax.set_title("WER by utterance length")
    ax.legend(loc="upper right", fontsize=8)
    _save(plt, fig, path)
    return True


def plot_top_confusions(s: dict, path: Path, top: int = 15) -> bool:
    plt = _pyplot()
    c = s["confusions"]
    panels = [("substitutions (ref → hyp)", [(f"{a} → {b}", k) for a, b, k in c["sub"][:top]], "#c44e52"),
              ("deletions", [(a, k) for a, k in c["del"][:top]], "#8172b2"),
              ("insertions", [(a, k) for a, k in c["ins"][:top]], "#55a868")]
    if plt is None or not any(p[1] for p in panels):
        return False
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.3 * top + 1.5))
    for ax, (name, items, color) in zip(axes, panels):
        ax.set_title(f"top {name}", fontsize=10)
        if not items:
            ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        labels, counts = zip(*items)
        ax.barh(range(len(items)), counts, color=color)
        ax.set_yticks(range(len(items)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("count")
    _save(plt, fig, path)
    return True


def plot_wer_by_speaker(s: dict, path: Path, top: int = 40) -> bool:
    plt = _pyplot()
    groups = sorted(s.get("by_speaker") or [], key=lambda g: -g["wer"])[:top]
    if plt is None or len(groups) < 2:
        return False
    fig, ax = plt.subplots(figsize=(7, 0.25 * len(groups) + 1.5))
    _bars_with_ci(ax, groups, horizontal=True)
    ax.axvline(s["wer"] if s["wer"] != float("inf") else 0, color="#c44e52", ls="--", lw=1)
    ax.set_title("WER by speaker" + (f" (worst {top})" if len(s["by_speaker"]) > top else ""))
    _save(plt, fig, path)
    return True


def _save(plt, fig, path: Path) -> None:
    """Lay out, write atomically (a temporary .png name, so savefig keeps the format), close."""
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def write_plots(out: Path, s: dict) -> list[str]:
    made = []
    for name, fn in (("wer_by_length.png", plot_wer_by_length),
                     ("top_confusions.png", plot_top_confusions),
                     ("wer_by_speaker.png", plot_wer_by_speaker)):
        if fn(s, out / name):
            made.append(name)
    return made


# -- HTML ----------------------------------------------------------------------------------------
_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
pre{background:#f8f8f8;padding:.6em;overflow-x:auto;font-size:13px}
.S{background:#fbd5d5}.D{background:#e2d9f3}.I{background:#d4edda}img{max-width:100%}
.note{color:#555;font-size:90%}"""


def _html_table(head: list[str], rows: list[list]) -> str:
    e = html.escape
    return ("<table><tr>" + "".join(f"<th>{e(str(h))}</th>" for h in head) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in r) + "</tr>" for r in rows)
            + "</table>")


def _html_alignment(s: dict, u: int, speaker: str) -> str:
    al = s["_align"]
    a = s["_arrays"]
    ref_row, hyp_row, ev = aligned_rows(al, u)
    widths = [max(len(x), len(y), 1) for x, y in zip(ref_row, hyp_row)]

    def row(tokens):
        return " ".join(f'<span class="{m}">{html.escape(t.ljust(w))}</span>' if m else html.escape(t.ljust(w))
                        for t, m, w in zip(tokens, ev, widths))
    hits = int(a["words"][u] - a["sub"][u] - a["del"][u])
    head = html.escape(f"id: ({al.ids[u]})" + (f"  speaker: {speaker}" if speaker else "")
                       + f"  #C {hits} #S {a['sub'][u]} #D {a['del'][u]} #I {a['ins'][u]}")
    return f"{head}\nREF:  {row(ref_row)}\nHYP:  {row(hyp_row)}"


def html_report(s: dict, title: str = "Scoring report", sources: dict | None = None,
                plots: dict[str, bytes] | None = None, worst: int = 50) -> str:
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1><ul>"]
    for k, v in (sources or {}).items():
        parts.append(f"<li>{e(k)}: <code>{e(str(v))}</code></li>")
    parts.append(f"<li>normalisation: {e(s.get('normalization', 'none'))}</li></ul>")
    parts += [_html_table(*summary_table(s)), f"<p class='note'>{e(_ci_note(s))}</p>"]
    for name, png in (plots or {}).items():
        parts.append(f"<p><img alt='{e(name)}' src='data:image/png;base64,"
                     f"{base64.b64encode(png).decode('ascii')}'></p>")
    for title_, table, note in _sections(s):
        parts += [f"<h2>{e(title_)}</h2>", f"<p class='note'>{e(note)}</p>" if note else "",
                  _html_table(*table)]
    parts.append("<h2>Most frequent errors</h2>")
    for name, table in confusion_rows(s).items():
        parts += [f"<h3>{e(name)}</h3>", _html_table(*table) if table[1] else "<p>(none)</p>"]
    spk = s.get("_speakers") or []
    shown = [u for u in s["per_utt"][:worst] if u["errors"]]
    parts += [f"<h2>Worst utterances ({len(shown)} of {s['utterances']})</h2>",
              "<p class='note'>substitutions <span class='S'>S</span>, deletions "
              "<span class='D'>D</span>, insertions <span class='I'>I</span>; all utterances in "
              "alignments.txt</p><pre>"]
    parts += [_html_alignment(s, u["idx"], spk[u["idx"]] if spk else "") + "\n" for u in shown]
    parts.append("</pre></body></html>")
    return "\n".join(parts)


# -- everything ----------------------------------------------------------------------------------
def write_per_utt(path: Path, s: dict) -> None:
    """per_utt.jsonl: per-utterance counts (and speaker, where known), in reference order."""
    spk = s.get("_speakers") or []
    with atomic_open(path) as f:
        for u in sorted(s["per_utt"], key=lambda u: u["idx"]):
            row = {k: v for k, v in u.items() if k != "idx"}
            if spk and spk[u["idx"]]:
                row["speaker"] = spk[u["idx"]]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_all(out_dir: str | Path, s: dict, title: str = "Scoring report",
              sources: dict | None = None, plots: bool = True,
              pictures: list[str | Path] | None = None) -> dict[str, Path]:
    """Write the report files of a score() result into out_dir; returns {kind: path}.

    pictures: more PNG files to show after the plots (e.g. `asr plot utterances` pictures):
    embedded in report.html, linked (relative to out_dir) from report.md."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pngs = write_plots(out, s) if plots else []
    extra = {os.path.relpath(p, out): Path(p) for p in pictures or []}
    paths = {"markdown": out / "report.md", "html": out / "report.html",
             "alignments": out / "alignments.txt", "json": out / "scores.json",
             "per_utt": out / "per_utt.jsonl"}
    atomic_write_text(paths["markdown"], markdown_report(s, title, sources, plots=pngs + list(extra)))
    images = {**{p: (out / p).read_bytes() for p in pngs}, **{k: p.read_bytes() for k, p in extra.items()}}
    atomic_write_text(paths["html"], html_report(s, title, sources, images))
    write_alignments(paths["alignments"], s)
    meta = {"title": title, "sources": {k: str(v) for k, v in (sources or {}).items()}}
    atomic_write_text(paths["json"], json.dumps({**meta, **summary(s)}, indent=1, ensure_ascii=False))
    write_per_utt(paths["per_utt"], s)
    for p in pngs:
        paths[p] = out / p
    return paths
