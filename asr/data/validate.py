"""Validating manifests (`asr validate MANIFEST...`): every entry checked before training on it.

Each entry is checked for: valid JSON with audio_filepath / text / duration; a unique id; the
audio file exists, is a file and decodes (not truncated, not empty, no NaN/inf, not all zero);
the manifest duration matches the decoded one (within --tolerance seconds; an entry with an
"offset" is a segment of a longer recording and must lie inside it); the text is
non-empty and covered by the vocabulary (data.units: characters or phones); the label fits the
frames left after the model's subsampling (model.subsample, features.hop_ms; a repeated token
needs a blank between, so it counts twice). The summary is the one `asr prepare` ends with:
usable utterances and hours per manifest, then every offending line with its reason.

Exit status: 0 when something usable remains (1 with --strict if anything was rejected),
1 when nothing usable remains, 2 for usage errors.
"""

from __future__ import annotations

import json
from pathlib import Path

from asr.data.checks import (BAD_LINE, DURATION, DUPLICATE, Summary, check_transcript, probe_audio,
                             probe_segment)
from asr.utils import pool_map


def _entries(manifest: Path):
    """(where, entry or None, problem) per non-empty line; paths resolved like read_manifest."""
    seen: set[str] = set()
    with open(manifest, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{manifest}:{lineno}"
            if not raw.strip():
                continue
            try:
                e = json.loads(raw.decode("utf-8"))
                if not isinstance(e, dict):
                    raise ValueError("not a JSON object")
            except (UnicodeDecodeError, ValueError) as err:
                yield where, None, (BAD_LINE, f"not valid JSON ({str(err)[:80]})")
                continue
            missing = [k for k in ("audio_filepath", "text", "duration") if k not in e]
            if missing:
                yield where, None, (BAD_LINE, f"no {', '.join(missing)}")
                continue
            audio = Path(str(e["audio_filepath"]))
            if not audio.is_absolute():
                audio = manifest.parent / audio
            e["audio_filepath"] = str(audio)
            uid = str(e.get("id", audio.stem))
            if uid in seen:
                yield where, e, (DUPLICATE, f"id {uid!r} occurs earlier in the manifest")
                continue
            seen.add(uid)
            yield where, e, None


def check_entry(item: tuple, arg) -> list[tuple]:
    """[("ok", duration)] or [("bad", file, kind, detail, where)]."""
    where, e, problem = item
    checks, tolerance = arg
    file = e["audio_filepath"] if e else where
    if problem:
        return [("bad", file, *problem, where)]
    try:
        declared = float(e["duration"])
        offset = float(e["offset"]) if "offset" in e else None
    except (TypeError, ValueError):
        return [("bad", file, BAD_LINE, f"duration {e['duration']!r} or offset "
                 f"{e.get('offset')!r} is not a number", where)]
    if offset is not None:  # a segment: its own bounds are the check
        duration, kind, detail = probe_segment(file, offset, declared, checks.check_audio)
    else:
        duration, kind, detail = probe_audio(file, checks.check_audio)
    if kind:
        return [("bad", file, kind, detail, where)]
    if abs(declared - duration) > max(tolerance, 0.01 * duration):
        return [("bad", file, DURATION, f"{declared:.3f} s in the manifest, {duration:.3f} s in the file", where)]
    _, kind, detail = check_transcript(str(e["text"]), duration, checks)
    if kind:
        return [("bad", file, kind, detail, where)]
    return [("ok", duration)]


def validate(manifests: list[str | Path], checks, nj: int = 1, tolerance: float = 0.1,
             title: str = "validate"):
    """Check every entry of the manifests (checks: asr.data.checks.Checks); returns the
    Summary, one split per manifest."""
    summary = Summary(title)
    for manifest in map(Path, manifests):
        name = manifest.name
        if not manifest.is_file():
            summary.bad(name, str(manifest), "missing file", "no such manifest")
            continue
        for r in pool_map(check_entry, _entries(manifest), (checks, tolerance), nj):
            if r[0] == "ok":
                summary.ok(name, r[1])
            else:
                summary.bad(name, r[1], r[2], r[3], r[4])
    return summary
