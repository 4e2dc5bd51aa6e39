"""What `asr transcribe` makes of a result: the input files a folder stands for, the output
formats (:data:`FORMATS`: txt, json, srt, vtt, tsv, ctm), one distinct output name per input,
and the files written. Everything here returns text or writes files: printing is the CLI's.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from asr.data.reader import AUDIO_SUFFIXES
from asr.transcribe.subtitles import group_words, to_ctm, to_srt, to_tsv, to_vtt
from asr.utils import atomic_write_text

log = logging.getLogger(__name__)

FORMATS = ("txt", "json", "srt", "vtt", "tsv", "ctm")


def expand_inputs(paths: list[str]) -> list[Path]:
    """Files as given; a folder becomes its audio files (recursively, sorted): those with a
    suffix asr.data.reader reads (AUDIO_SUFFIXES, any case)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                log.warning("%s: folder holds no audio files (%s)", p, " ".join(sorted(AUDIO_SUFFIXES)))
            out += found
        else:
            out.append(p)
    return out


def check_formats(formats: list[str]) -> None:
    """ValueError naming any format not in FORMATS."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown output format(s) {bad} (known: {', '.join(FORMATS)})")


@dataclass(frozen=True)
class CueLimits:
    """How words become subtitle / tsv cues. max_chars: longest cue text; max_duration: longest
    cue (s); max_gap: a pause longer than this (s) starts a new cue."""

    max_chars: int = 42
    max_duration: float = 6.0
    max_gap: float = 1.0


def render(result: dict, fmt: str, limits: CueLimits = CueLimits()) -> str:
    """One result as txt, json, srt, vtt, tsv or ctm text."""
    if fmt == "txt":
        return result["text"] + "\n"
    if fmt == "json":
        return json.dumps(result, ensure_ascii=False, indent=1) + "\n"
    if fmt == "ctm":
        return to_ctm(result["words"], Path(result["path"]).stem or "audio")
    if fmt in ("srt", "vtt", "tsv"):
        cues = group_words(result["words"], **dataclasses.asdict(limits))
        return {"srt": to_srt, "vtt": to_vtt, "tsv": to_tsv}[fmt](cues)
    raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")


def stdout_text(result: dict, formats: list[str], limits: CueLimits = CueLimits()) -> str:
    """A result as `asr transcribe` without --out prints it: txt as 'path<TAB>text', json as
    one JSON line, the others as rendered."""
    parts = []
    for fmt in formats:
        if fmt == "txt":
            parts.append(f"{result['path']}\t{result['text']}\n")
        elif fmt == "json":
            parts.append(json.dumps(result, ensure_ascii=False) + "\n")
        else:
            parts.append(render(result, fmt, limits))
    return "".join(parts)


def output_names(files: list[Path]) -> dict[Path, str]:
    """A distinct output name per input: its stem, or its whole name where stems collide
    (a.wav, a.flac -> a.wav.txt, a.flac.txt; logged); -2, -3 … before the suffix where even
    names collide (a.wav in two folders -> a.wav, a-2.wav)."""
    files = list(dict.fromkeys(files))
    stems = Counter(f.stem for f in files)
    names: dict[Path, str] = {}
    used: set[str] = set()
    for f in files:
        name = f.stem if stems[f.stem] == 1 else f.name
        n = 1
        while name in used:
            n += 1
            name = f"{f.stem}-{n}{f.suffix}"
        names[f] = name
        used.add(name)
    renamed = [f"{f} -> {name}" for f, name in names.items() if name != f.stem]
    if renamed:
        log.warning("inputs share a stem, so their output names keep the extension: %s", ", ".join(renamed))
    return names


def make_output_folder(out_dir: Path) -> None:
    """out_dir made (with its parents) if missing; ValueError naming it if it cannot be."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        why = "is a file, not a folder" if out_dir.is_file() else (e.strerror or str(e))
        raise ValueError(f"output folder {out_dir}: {why}") from None


def write_outputs(result: dict, name: str, formats: list[str], out_dir: Path,
                  limits: CueLimits = CueLimits()) -> list[Path]:
    """Write one result in each format as out_dir/<name>.<fmt> (atomically); the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        paths.append(atomic_write_text(path, render(result, fmt, limits)))
    return paths
