"""Tux Paint stamps (Debian package ``tuxpaint-stamps-default``): the spoken English stamp
descriptions -> manifests. Free software (GPL); only read at build time.

data.source is the ``.deb`` (extracted with dpkg-deb into <data.root>/download/<name>/ once), its
extracted root, or the ``stamps`` folder itself. As verified on the package (2022.06.04-1: 7,858
.ogg files under ``usr/share/tuxpaint/stamps``, 66 of them English descriptions)::

    stamps/<category>/.../<stamp>.png (or .svg)  the picture
    <stamp>.txt               the description: an untagged first line in English ("An owl."),
                              then one translation a line, "xx.utf8=..." / "xx_YY.utf8=..."
    <stamp>_desc.ogg          the English description, spoken (Ogg Vorbis)
    <stamp>_desc_<lang>.ogg   the description in another language (be, bg, ca, fr, ...)
    <stamp>.ogg               the stamp's sound effect (a bird call, an engine): not speech
    <stamp>_<lang>.ogg        a localised sound (e.g. digits and letters spoken in en_GB);
                              its words are not written anywhere in the package

Only ``<stamp>_desc.ogg`` with the English line of ``<stamp>.txt`` is imported (one voice, not
named in the package: speaker "tuxpaint"); a description without its .txt (wallaby, in this
version) is rejected as "no transcript", the plain sound effects as non-speech, and the other
recordings are counted in a Summary note. The text is taken as written ("A brown hen.").
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from asr.data.checks import BAD_UTF8, EMPTY_TEXT, NON_SPEECH, NO_TRANSCRIPT, Summary

from .common import find_dir, prepare_one_split, source_dir

DEBIAN_PACKAGE = "tuxpaint-stamps-default"  # data.source may be its .deb (apt-get download)
SPEAKER = "tuxpaint"
DESC = "_desc.ogg"
OTHER_LANGUAGE = re.compile(r".+_desc_[A-Za-z]{2,3}(?:_[A-Za-z]{2})?\.ogg")
TRANSLATION = re.compile(r"^[A-Za-z_@]+\.utf8=")
PICTURE_SUFFIXES = (".png", ".svg", ".txt")


def english_line(txt: Path) -> str:
    """The untagged (English) line of a stamp's .txt; "" when it has none."""
    text = txt.read_text(encoding="utf-8-sig")
    for line in text.splitlines():
        if line.strip() and not TRANSLATION.match(line):
            return line.strip()
    return ""


def is_stamp(folder: Path, stem: str) -> bool:
    """A stamp is named by its picture or its .txt: `stem` is one when a sibling file has it."""
    return any((folder / (stem + suffix)).is_file() for suffix in PICTURE_SUFFIXES)


def sound_kind(path: Path) -> str:
    """"description", "other language", "sound effect" or "localised sound" for one .ogg."""
    name = path.name
    if name.endswith(DESC):
        return "description"
    if OTHER_LANGUAGE.fullmatch(name):
        return "other language"
    return "sound effect" if is_stamp(path.parent, path.stem) else "localised sound"


def stamp_id(stamps: Path, folder: Path, stamp: str) -> str:
    """The stamp's path below stamps/, "-"-joined: stamp names repeat across categories."""
    rel = folder.relative_to(stamps).parts
    return "-".join(("tuxpaint", *rel, stamp)).lower()


def description_item(stamps: Path, audio: Path) -> dict:
    """The importer item of one <stamp>_desc.ogg: its English text, or a rejection."""
    stamp = audio.name[: -len(DESC)]
    uid = stamp_id(stamps, audio.parent, stamp)
    txt = audio.parent / f"{stamp}.txt"
    if not txt.is_file():
        return {"id": uid, "audio": str(audio), "reject": (NO_TRANSCRIPT, f"{txt.name} is missing")}
    try:
        text = english_line(txt)
    except UnicodeDecodeError as e:
        return {"id": uid, "audio": str(audio), "reject": (BAD_UTF8, f"{txt.name}: {e.reason}")}
    if not text:
        return {"id": uid, "audio": str(audio),
                "reject": (EMPTY_TEXT, f"{txt.name}: no English line")}
    return {"id": uid, "audio": str(audio), "text": text, "speaker": SPEAKER}


def items(stamps: str | Path, counts: Counter | None = None):
    """Importer items for every English description (and a rejection for every plain sound
    effect), in path order; recordings in other languages and localised sounds are counted in
    `counts` (kind -> files)."""
    stamps = Path(stamps)
    counts = Counter() if counts is None else counts
    for audio in sorted(stamps.rglob("*.ogg")):
        kind = sound_kind(audio)
        if kind == "description":
            yield description_item(stamps, audio)
        elif kind == "sound effect":
            yield {"id": stamp_id(stamps, audio.parent, audio.stem), "audio": str(audio),
                   "reject": (NON_SPEECH, "the stamp's sound effect")}
        else:
            counts[LEFT_OUT[kind]] += 1


LEFT_OUT = {"other language": "descriptions in other languages",
            "localised sound": "localised sounds (words not written in the package)"}


def find_stamps(cfg) -> Path:
    """The stamps folder of data.source (the .deb, its extracted root or the folder itself)."""
    source = source_dir(cfg, "tuxpaint")
    found = find_dir(source, lambda d: d.name == "stamps" and d.parent.name == "tuxpaint", 4)
    if found is None and source.name == "stamps":
        found = source
    if found is None:
        raise FileNotFoundError(f"tuxpaint: no tuxpaint/stamps folder in {source}")
    if next(found.rglob(f"*{DESC}"), None) is None:
        raise FileNotFoundError(f"tuxpaint: no spoken descriptions (*{DESC}) in {found}")
    return found


def prepare(cfg, progress: bool = True, summary: Summary | None = None) -> Summary:
    """Every English description in one split, "all"."""
    stamps = find_stamps(cfg)
    return prepare_one_split(cfg, "tuxpaint", lambda counts: items(stamps, counts), progress, summary)
