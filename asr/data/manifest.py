"""JSON Lines manifests with NeMo's keys: id, audio_filepath, duration, text, speaker, and
optionally offset: then the utterance is the segment of `duration` seconds from `offset` seconds
into audio_filepath (segments of long recordings; asr.data.audio.entry_audio reads only it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

from asr.utils import atomic_open


def read_manifest(path: str | Path) -> Iterator[dict]:
    """Yield manifest entries; relative audio paths are resolved against the manifest's folder.

    Entries without an "id" get the audio file's stem. A line that is not valid JSON raises
    ValueError naming the file and line number.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            if "audio_filepath" in entry:
                audio = Path(entry["audio_filepath"])
                if not audio.is_absolute():
                    entry["audio_filepath"] = str(path.parent / audio)
                entry.setdefault("id", audio.stem)
            yield entry


def write_manifest(path: str | Path, entries: Iterable[dict]) -> int:
    """Write entries atomically; returns the number written."""
    n = 0
    with atomic_open(path) as f:
        for entry in entries:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
            n += 1
    return n
