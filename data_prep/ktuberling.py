"""KTuberling (Debian package ``ktuberling-data``): the English names of the game's stickers,
each word recorded once by one voice -> manifests. Only read at build time.

data.source is the ``.deb`` (extracted with dpkg-deb into <data.root>/download/<name>/ once), its
extracted root, or any folder at or above ``sounds``. As verified on the package (4:22.12.3-1;
72 English clips, Ogg Vorbis 44.1 kHz stereo, 1.0 minute)::

    usr/share/ktuberling/sounds/<language>.soundtheme   the game's sound table
    usr/share/ktuberling/sounds/<language>/<sound>.ogg  the clips
    usr/share/ktuberling/pics/<theme>.theme             stickers -> sound names

``en.soundtheme`` is XML: ``<language code="en">`` holding ``<sound name="egypt_palmtree"
file="en/egypt_palmtree.ogg" />``. The sound name is the transcript: a playground prefix
(egypt_, moon_, pizzeria_, tv_ for train_valley, ...) then the word, underscores between words,
some glued or misspelt (SPOKEN has those: from the name; nobody could listen to the clips). The
file name may differ from the sound name (pizzeria_brocolli -> en/pizzeria_broccolli.ogg).

en/tv_tree.ogg is in the folder but not in en.soundtheme (the game never plays it): imported
with its text from the file name and counted in a Summary note. Files the table names but the
folder lacks are rejected by the checks (missing file). There is no per-clip speaker data and
the clips share one format: one speaker, ``ktuberling-en``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from asr.data.checks import NON_SPEECH, Summary

from .common import find_dir, prepare_one_split, source_dir

DEBIAN_PACKAGE = "ktuberling-data"  # data.source may be its .deb (apt-get download)
LANGUAGE = "en"
# Sound-name prefixes naming the playground a sticker belongs to, not spoken.
PLAYGROUNDS = ("robot_workshop_", "butterflies_", "pizzeria_", "egypt_", "moon_", "xmas_", "tv_")
# Words of a sound name that are glued or misspelt -> the words as spoken.
SPOKEN = {"palmtree": "palm tree", "fallingstar": "falling star", "sphynx": "sphinx",
          "brocolli": "broccoli", "broccolli": "broccoli"}
UNSURE = {"moonwalker", "ufo"}  # may be said "moon walker", "U F O"
# robin-tux's "tux-laugh", "tux-zzz", "tux-stare": what Tux does, not what is said (French says
# "je ris", "je dors", "j'examine"). None in the English table of 22.12.3.
ACTION = "tux-"
NOT_WORDS = "sound name describes an action, not its words"
NOT_IN_TABLE = "clip not in the sound table (text from its file name)"


def words_of(sound: str) -> str:
    """The words a sound name stands for: "egypt_palmtree" -> "palm tree"."""
    for prefix in PLAYGROUNDS:
        if sound.startswith(prefix):
            sound = sound[len(prefix):]
            break
    return " ".join(SPOKEN.get(w, w) for w in sound.replace("-", "_").split("_") if w)


def read_soundtheme(path: str | Path) -> list[tuple[str, str]]:
    """(sound name, file relative to the sounds folder) of a <language>.soundtheme, in order;
    ValueError naming the file if it is not one."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ValueError(f"{path}: not a sound table ({e})") from None
    if root.tag != "language":
        raise ValueError(f"{path}: not a sound table (root <{root.tag}>, expected <language>)")
    return [(s.get("name", ""), s.get("file", "")) for s in root.iter("sound")
            if s.get("name") and s.get("file")]


def is_sounds_dir(d: Path, language: str = LANGUAGE) -> bool:
    return (d / f"{language}.soundtheme").is_file() and (d / language).is_dir()


def find_sounds(cfg, language: str = LANGUAGE) -> Path:
    """The sounds folder of data.source (the .deb, its extracted root, or a folder above)."""
    source = source_dir(cfg, "ktuberling")
    found = find_dir(source, lambda d: is_sounds_dir(d, language), 5)
    if found is None:
        raise FileNotFoundError(f"ktuberling: no sounds/{language}.soundtheme with a "
                                f"sounds/{language}/ folder (share/ktuberling/sounds) in {source}")
    return found


def item(name: str, audio: Path, language: str) -> dict:
    uid = f"ktuberling-{language}-{name}"
    if name.startswith(ACTION):
        return {"id": uid, "audio": str(audio), "reject": (NON_SPEECH, f"{NOT_WORDS}: {name}")}
    return {"id": uid, "audio": str(audio), "text": words_of(name),
            "speaker": f"ktuberling-{language}"}


def items(sounds: str | Path, language: str = LANGUAGE, counts: Counter | None = None):
    """Importer items for every clip of the language's sound table, then for the clips of its
    folder that the table leaves out (counted in `counts`)."""
    sounds = Path(sounds)
    listed = read_soundtheme(sounds / f"{language}.soundtheme")
    for name, file in listed:
        yield item(name, sounds / file, language)
    known = {(sounds / f).resolve() for _, f in listed}
    for path in sorted((sounds / language).glob("*.ogg")):
        if path.resolve() not in known:
            if counts is not None:
                counts[NOT_IN_TABLE] += 1
            yield item(path.stem, path, language)


def prepare(cfg, progress: bool = True, summary: Summary | None = None) -> Summary:
    """Every English clip in one split, "all"."""
    sounds = find_sounds(cfg)
    return prepare_one_split(cfg, "ktuberling", lambda counts: items(sounds, LANGUAGE, counts),
                             progress, summary, counted="imported")
