"""Transcript files read into `Transcripts` (id -> text, with speakers / subsets / durations).

Formats (`read_transcripts`, auto-detected by `detect_format`, or forced with ``fmt``):

- JSON Lines manifests / hypotheses: ``{"id", "text", "speaker"?, "audio_filepath"?, ...}``
  (``.jsonl``/``.json``; an entry without ``id`` is keyed by its audio file's stem, plus
  ``@<offset>`` for a segment). Read as hypotheses, NeMo's output manifests are understood: an
  entry's ``pred_text`` is the hypothesis (its ``text`` is NeMo's copy of the reference), so
  one NeMo file can be both REF and HYP.
- Kaldi ``text`` files: ``uttid word word ...`` (any other extension), speakers from ``utt2spk``
- sclite ``trn`` files: ``word word ... (uttid)`` (``.trn``); the speaker is the part of the
  id before the first ``-`` or ``_`` (sclite's ``(spk-utt)`` convention)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

FORMATS = ("jsonl", "kaldi", "trn")
_TRN_LINE = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*$")


@dataclass
class Transcripts:
    """Texts of one file keyed by utterance id, with speakers / subsets / durations where known."""

    texts: dict[str, str] = field(default_factory=dict)
    speakers: dict[str, str] = field(default_factory=dict)
    subsets: dict[str, str] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    format: str = "jsonl"
    path: str = ""

    hypotheses: bool = False  # read pred_text (NeMo's hypothesis) before text

    def where(self, lineno: int) -> str:
        """'file:line', the prefix of every error about that line."""
        return f"{self.path}:{lineno}"

    def add(self, key: str, text: str, lineno: int) -> None:
        if key in self.texts:
            raise ValueError(f"{self.where(lineno)}: duplicate utterance id {key!r}")
        self.texts[key] = text


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


def _add_jsonl_line(t: Transcripts, line: str, lineno: int, subset_key: str) -> None:
    try:
        e = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"{t.where(lineno)}: not valid JSON ({err.msg})") from None
    if not isinstance(e, dict):
        raise ValueError(f"{t.where(lineno)}: expected a JSON object")
    key = e.get("id") or Path(e.get("audio_filepath") or "").stem
    if not key:
        raise ValueError(f"{t.where(lineno)}: entry has neither 'id' nor 'audio_filepath'")
    key = str(key) if e.get("id") or "offset" not in e else f"{key}@{float(e['offset']):g}"
    text = e["pred_text"] if t.hypotheses and "pred_text" in e else e.get("text")
    t.add(key, text or "", lineno)
    if e.get("speaker") not in (None, ""):
        t.speakers[key] = str(e["speaker"])
    if subset_key and e.get(subset_key) not in (None, ""):
        t.subsets[key] = str(e[subset_key])
    if isinstance(e.get("duration"), (int, float)):
        t.durations[key] = float(e["duration"])


def _add_trn_line(t: Transcripts, line: str, lineno: int, subset_key: str) -> None:
    m = _TRN_LINE.match(line.rstrip("\n"))
    if not m:
        raise ValueError(f"{t.where(lineno)}: not an sclite trn line 'text (uttid)'")
    key = m.group(2).strip()
    t.add(key, m.group(1), lineno)
    spk = trn_speaker(key)
    if spk:
        t.speakers[key] = spk


def _add_kaldi_line(t: Transcripts, line: str, lineno: int, subset_key: str) -> None:
    parts = line.split(None, 1)
    t.add(parts[0], parts[1].strip() if len(parts) > 1 else "", lineno)


_LINE_READERS = {"jsonl": _add_jsonl_line, "trn": _add_trn_line, "kaldi": _add_kaldi_line}


def read_transcripts(path: str | Path, fmt: str | None = None, subset_key: str = "subset",
                     utt2spk: str | Path | None = None, hypotheses: bool = False) -> Transcripts:
    """Read a JSONL manifest/hypothesis file, a Kaldi text file or an sclite trn file;
    hypotheses: the file holds hypotheses (a JSONL entry's pred_text wins over its text)."""
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown transcript format {fmt!r} (choose from {', '.join(FORMATS)})")
    t = Transcripts(format=fmt, path=str(path), hypotheses=hypotheses)
    add_line = _LINE_READERS[fmt]
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                add_line(t, line, lineno, subset_key)
    if utt2spk:
        t.speakers.update(read_utt2spk(utt2spk))
    return t
