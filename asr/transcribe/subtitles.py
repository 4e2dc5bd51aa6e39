"""Subtitles from timed words: cue grouping and SRT / WebVTT writing (and an SRT reader for tests).

A cue collects consecutive words until adding the next one would make it longer than
``max_chars`` characters or ``max_duration`` seconds, or the pause before the next word exceeds
``max_gap`` seconds. Its times are its first word's start and its last word's end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass
class Cue:
    """One subtitle: start/end in seconds and its text."""

    start: float
    end: float
    text: str


def group_words(words: list[dict], max_chars: int = 42, max_duration: float = 6.0,
                max_gap: float = 1.0) -> list[Cue]:
    """Group timed words ({"word", "start", "end"}) into cues.

    max_chars: longest cue text; max_duration: longest cue (seconds);
    max_gap: a pause longer than this (seconds) between two words starts a new cue.
    """
    cues: list[Cue] = []
    cur: list[dict] = []
    for w in words:
        if cur:
            text_len = sum(len(x["word"]) + 1 for x in cur) + len(w["word"])
            if (text_len > max_chars or w["end"] - cur[0]["start"] > max_duration
                    or w["start"] - cur[-1]["end"] > max_gap):
                cues.append(_cue(cur))
                cur = []
        cur.append(w)
    if cur:
        cues.append(_cue(cur))
    return cues


def _cue(words: list[dict]) -> Cue:
    return Cue(float(words[0]["start"]), float(words[-1]["end"]), " ".join(w["word"] for w in words))


def timestamp(seconds: float, sep: str = ",") -> str:
    """HH:MM:SS,mmm (SRT; sep="." for WebVTT), rounded to the millisecond."""
    ms = max(0, int(round(seconds * 1000)))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(cues: list[Cue]) -> str:
    """SubRip text: numbered cues, 'start --> end', the text, a blank line."""
    return "".join(f"{i}\n{timestamp(c.start)} --> {timestamp(c.end)}\n{c.text}\n\n"
                   for i, c in enumerate(cues, 1))


def to_vtt(cues: list[Cue]) -> str:
    """WebVTT text: the WEBVTT header, then 'start --> end' and the text per cue."""
    body = "".join(f"{timestamp(c.start, '.')} --> {timestamp(c.end, '.')}\n{c.text}\n\n" for c in cues)
    return "WEBVTT\n\n" + body


def to_tsv(cues: list[Cue]) -> str:
    """Tab-separated cues: start and end in integer milliseconds, then the text (Whisper's tsv)."""
    body = "".join(f"{int(round(c.start * 1000))}\t{int(round(c.end * 1000))}\t{c.text}\n" for c in cues)
    return "start\tend\ttext\n" + body


def to_ctm(words: list[dict], name: str) -> str:
    """NIST CTM, a line per word: recording, channel 1, start, duration (s), word, confidence."""
    return "".join(f"{name} 1 {w['start']:.3f} {max(0.0, w['end'] - w['start']):.3f} {w['word']} "
                   f"{float(w.get('conf', 1.0)):.3f}\n" for w in words)


_SRT_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)$")


def parse_srt(text: str) -> list[Cue]:
    """Read SRT text back into cues; ValueError on anything malformed (used to validate output)."""
    cues = []
    for n, block in enumerate([b for b in text.strip().split("\n\n") if b.strip()], 1):
        lines = block.split("\n")
        if len(lines) < 3 or lines[0] != str(n):
            raise ValueError(f"SRT cue {n}: expected number, times and text, got {lines!r}")
        m = _SRT_TIME.match(lines[1])
        if not m:
            raise ValueError(f"SRT cue {n}: bad time line {lines[1]!r}")
        v = [int(x) for x in m.groups()]
        start = v[0] * 3600 + v[1] * 60 + v[2] + v[3] / 1000
        end = v[4] * 3600 + v[5] * 60 + v[6] + v[7] / 1000
        if end < start:
            raise ValueError(f"SRT cue {n}: ends before it starts")
        cues.append(Cue(start, end, "\n".join(lines[2:])))
    return cues
