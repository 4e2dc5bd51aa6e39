"""Hedgewars voice packs (Debian package ``hedgewars-data``): short English taunts recorded by
people, one pack per voice -> manifests. Only read at build time.

data.source is the ``.deb`` (extracted with dpkg-deb into <data.root>/download/<name>/ once), its
extracted root, or any folder at or above ``voices``. As verified on the package (1.0.2-6,
15 packs, 903 Ogg Vorbis files, 14.9 minutes)::

    usr/share/games/hedgewars/Data/Sounds/voices/<pack>/<Event>.ogg

A file is named after the game event that plays it (sndYoullRegretThat -> Youllregretthat.ogg),
so the name is the transcript: its words glued together and capitalised once. The words of each
glued name are in GLUED (written from the name; nobody could listen to the clips). Numbered
names (Jump1-3, Ooff1-3, Ow1-4, Firepunch1-6) are several takes of one cry, not words; they and
the laughs, coughs and hums are in NON_VERBAL and rejected with that reason.

Packs named ``<pack>_<ll>`` are the game's localised voices (its convention: the locale code
appended; Default_es, Default_pl, Default_ru, Default_uk, Russian_pl say the same events in
Spanish, Polish, Russian, Ukrainian): left out, counted in a Summary note. Russian is English
with a Russian accent (Russian_pl is its Polish version), Robot is a processed voice.

Some packs share recordings byte for byte (Classic and Default share 17: an older and a newer
Default voice, probably one speaker). The first copy (packs in name order) is kept, later ones
are rejected as duplicates. Where one recording is filed under different events (Classic's
Melon.ogg, Watchthis.ogg and Firepunch1.ogg are one file), its words are unknown: every copy is
rejected.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from pathlib import Path

from asr.data.checks import NON_SPEECH, Summary

from .common import find_dir, list_dir, prepare_one_split, source_dir

DEBIAN_PACKAGE = "hedgewars-data"  # data.source may be its .deb (apt-get download)
LOCALISED = re.compile(r".+_[a-z]{2}$")  # the game's "<pack>_<locale>" voices
TAKE = re.compile(r"\d+$")  # Jump1, Ow4: numbered takes of one event
DUPLICATE_RECORDING = "duplicate recording"
AMBIGUOUS = "one recording filed under different names"
UNLISTED = "voice line not in the transcript table"

# Event names whose words are glued together -> the words. From the name alone; the less certain
# ones (a voice may say more, e.g. "hurry up", "flawless victory") are listed in UNSURE.
GLUED = {
    "Byebye": "bye bye", "Comeonthen": "come on then", "Cutitout": "cut it out",
    "Enemydown": "enemy down", "Firstblood": "first blood", "Flyaway": "fly away",
    "Gonnagetyou": "gonna get you", "Illgetyou": "I'll get you", "Justyouwait": "just you wait",
    "Leavemealone": "leave me alone", "Ohdear": "oh dear", "Runaway": "run away",
    "Sameteam": "same team", "Solong": "so long", "Takecover": "take cover",
    "Thisoneismine": "this one is mine", "Watchit": "watch it", "Watchthis": "watch this",
    "Whatthe": "what the", "Yessir": "yes sir", "Youllregretthat": "you'll regret that",
    "Uh-oh": "uh oh", "Nooo": "no",  # a drawn-out "no": the word, not its length
}
# Names that are one word as they stand.
WORDS = {"Amazing", "Boring", "Brilliant", "Bugger", "Coward", "Drat", "Excellent", "Fire",
         "Flawless", "Grenade", "Hello", "Hurry", "Incoming", "Kamikaze", "Melon", "Missed",
         "Nutter", "Oops", "Ouch", "Reinforcements", "Revenge", "Stupid", "Traitor", "Victory"}
UNSURE = {"Hurry", "Flawless", "Kamikaze", "Sameteam", "Justyouwait", "Gonnagetyou", "Whatthe",
          "Nooo"}
# Event (take number dropped) -> why it is not words.
NON_VERBAL = {
    "Firepunch": "fire punch battle cry (takes 1-6)", "Jump": "jump grunt (takes 1-3)",
    "Ooff": "impact grunt (takes 1-3)", "Ow": "pain cry (takes 1-4; not always the word 'ow')",
    "Laugh": "laughter", "Hmm": "thinking hum", "PoisonCough": "cough", "PoisonMoan": "moan",
}


def event_of(name: str) -> str:
    """The event a file plays: its name without the .ogg and the take number."""
    return TAKE.sub("", Path(name).stem)


def transcript(name: str) -> tuple[str | None, str]:
    """(words spoken, "") for a voice file name, or (None, why it is left out)."""
    stem, event = Path(name).stem, event_of(name)
    if stem in GLUED:
        return GLUED[stem], ""
    if stem in WORDS:
        return stem.lower(), ""
    if event in NON_VERBAL:
        return None, NON_VERBAL[event]
    return None, ""


def is_voices_dir(d: Path) -> bool:
    return d.name == "voices" and any(p.is_dir() and any(p.glob("*.ogg")) for p in d.iterdir())


def find_voices(cfg) -> Path:
    """The voices folder of data.source (the .deb, its extracted root, or a folder above)."""
    source = source_dir(cfg, "hedgewars")
    found = find_dir(source, is_voices_dir, 7)
    if found is None:
        raise FileNotFoundError(f"hedgewars: no voices/<pack>/*.ogg (share/games/hedgewars/Data/"
                                f"Sounds/voices) in {source}")
    return found


def english_packs(voices: Path, counts: Counter | None = None) -> list[Path]:
    """The pack folders in name order; localised packs are counted in `counts` and skipped."""
    packs = []
    for e in list_dir(voices):
        if not e.is_dir():
            continue
        if LOCALISED.fullmatch(e.name):
            if counts is not None:
                n = sum(1 for _ in Path(e.path).glob("*.ogg"))
                counts[f"clips of localised pack {e.name} (not English)"] += n
            continue
        packs.append(Path(e.path))
    return packs


def digest(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def recordings(packs: list[Path]) -> dict[str, list[Path]]:
    """Content digest -> the files with those bytes, in pack and name order."""
    by_digest: dict[str, list[Path]] = defaultdict(list)
    for pack in packs:
        for e in list_dir(pack):
            if e.name.endswith(".ogg") and e.is_file():
                by_digest[digest(Path(e.path))].append(Path(e.path))
    return by_digest


def copies_verdict(files: list[Path]) -> dict[Path, tuple[str, str] | None]:
    """For one recording's files: None for the copy to keep, else the (reason, detail) of its
    rejection (a later duplicate, or every copy when the names disagree on the words)."""
    names = {event_of(f.name) for f in files}
    if len(names) > 1:
        others = ", ".join(f"{f.parent.name}/{f.name}" for f in files)
        return {f: (AMBIGUOUS, others) for f in files}
    first = files[0]
    return {f: None if f == first else (DUPLICATE_RECORDING,
                                        f"same bytes as {first.parent.name}/{first.name}")
            for f in files}


def speaker_of(pack: str) -> str:
    """The speaker id of a pack; Classic and Default share recordings byte for byte, so they
    are taken as one voice (held-out splits must not put one in training, one in test)."""
    return "hedgewars-default" if pack.lower() in ("classic", "default") else f"hedgewars-{pack.lower()}"


def items(voices: str | Path, counts: Counter | None = None):
    """Importer items for every clip of the English packs, pack by pack in name order."""
    packs = english_packs(Path(voices), counts)
    verdicts: dict[Path, tuple[str, str] | None] = {}
    for files in recordings(packs).values():
        verdicts.update(copies_verdict(files))
    for path in sorted(verdicts, key=lambda p: (p.parent.name, p.name)):
        pack, name = path.parent.name, path.name
        uid = f"hedgewars-{pack}-{path.stem}".lower()
        text, why = transcript(name)
        if text is None:
            reason = (NON_SPEECH, f"{why}: {name}") if why else (UNLISTED, name)
            yield {"id": uid, "audio": str(path), "reject": reason}
        elif verdicts[path] is not None:
            yield {"id": uid, "audio": str(path), "reject": verdicts[path]}
        else:
            yield {"id": uid, "audio": str(path), "text": text, "speaker": speaker_of(pack)}


def prepare(cfg, progress: bool = True, summary: Summary | None = None) -> Summary:
    """Every English voice clip in one split, "all" (held-out splits: data_prep.heldout)."""
    voices = find_voices(cfg)
    return prepare_one_split(cfg, "hedgewars", lambda counts: items(voices, counts), progress, summary)
