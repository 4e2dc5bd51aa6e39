"""Flight of the Amazon Queen (CD version, Debian package ``flight-of-the-amazon-queen``): the
game's recorded English dialogue -> manifests. Free to redistribute and modify (its licence);
only read at build time.

data.source is the extracted package root, any folder above ``queen.1c``, the file itself, or the
``.deb`` (extracted with dpkg-deb into <data.root>/download/<name>/ once). As verified on the
package (1.0.0-9, CEM10, 7,671 entries, 54,108,887 bytes):

``queen.1c`` (all integers big-endian)::

    0   4   b"QTBL"
    4   6   version, NUL-terminated ("CEM10": CD, English, MP3-compressed)
    10  2   unused
    12  1   compression (1 = MP3)
    13  2   entry count n
    15  21n entries: name (12 bytes, NUL-padded, upper case), bundle (1 byte, always 1 here:
            the data is in this file), offset (4, from the start of the file), size (4)

``*.SB`` entries are the voice clips and sound effects: bare MPEG-2.5 layer III frames (11,025 Hz
mono, 16 kbit/s); FFmpeg decodes them into FLAC files (libsndfile's decoder gives NaN samples
for some, not the same ones every run).

``*.DOG`` entries are the conversations: a 20-byte AMOS "AmBk" bank header, then (offsets from
after it) level count (int16; negative = cannot quit), unique key, talk key, Joe's entry count,
the person's entry count, 3 x (game state, test value, item), and the offsets of the person's
entries, the cutaway record and the "talked to before" pair. Joe's entries start at
32 + 96 * |levels| (after the dialogue tree), the person's at their offset; each entry is
(2 unused bytes, node id, Pascal string padded to 4 bytes). The pair is two Pascal strings padded
to 2 bytes (what the person, then Joe, say on meeting again).

A sentence is split into segments at each ``*`` command: ``*NN`` (two digits, a gesture) or a
two-letter one (FL, FR, FF, FB, AO, WT; GD/GM are grabs whose segment is not spoken; ``*XY``
takes a further 11 characters of coordinates). Segment k (from 0) of a sentence plays the clip
``<talk key:2><node:4 hex><P|J><k + 1:1 hex>.SB``, spaces written as zeros; Joe's first entry
uses node ``SSSS``, the pair ``XXXX``. P is the person of the .DOG file (named after it, digits
dropped: APE2.DOG -> APE), J is Joe.

``*.CUT`` entries are the cutaway scenes (data_prep.queen_cutaway): the 20-byte bank header,
then (offsets from after it) panel mode, object count (int16; negative = cannot quit), flags and
the offsets of the game state, the sentences and the bank names. The objects follow at 12: 17
int16 each (object number first; animation list 5th, execute 6th, "from object" 13th), then a
person count and that many int16. Each object takes the next sentence (Pascal strings padded to
2 bytes, after an entry string); an object that animates (not a speaking person, "execute" set,
no "from object") is followed by animation frames, 9 int16 after each int16 header, ended by a
-2 header. Object 0 (or -1) is Joe; an object > 0 without an animation list whose QUEEN.JAS
image is -3/-4 is a person and speaks its sentence in segments as above, clip
``<cut name padded with _ to 5><object index from 1:2 digits><segment:1 hex>.SB``
(C1A.CUT, object 3, segment 2: ``C1A__032.SB``); objects -2/-3 speak the whole sentence as
segment 1 (speaker "UNNAMED": the game names none). Speakers are the object names.

``QUEEN.JAS`` (bank header, then room, name, object and description counts, int16 each, then
16 bytes an object: name index, x, y, description, entry, room, state, image) and ``QUEEN2.JAS``
(text, CR LF lines: the descriptions, then the object names) name the speaking objects. As
verified, all 2,036 ``C*.SB`` clips map to a sentence of the 301 .CUT files, none unread.

Not imported yet: Joe's object remarks (``JOE*.SB``, text in QUEEN.JAS); ``*SSSSS``-style names
are sound effects. Each is counted in a Summary note.
"""

from __future__ import annotations

import io
import re
import struct
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

from asr.data.audio import AudioError, ffmpeg_decode
from asr.data.checks import EMPTY_TEXT, NON_SPEECH, UNDECODABLE, Summary
from asr.utils import atomic_path

from . import queen_cutaway as cutaway
from .common import find_dir, prepare_one_split, source_dir

DEBIAN_PACKAGE = "flight-of-the-amazon-queen"  # data.source may be its .deb (apt-get download)
MAGIC = b"QTBL"
HEADER = 15  # magic, version, unused, compression, count
ENTRY = struct.Struct(">12sBII")
DOG_HEADER = 20  # the AMOS bank header before a .DOG file's data
NOT_SPOKEN = ("GD", "GM")  # grab commands: the segment before them has no clip
CLIP = re.compile(r"\d{2}(?:[0-9A-F]{4}|SSSS|XXXX)[PJ][0-9A-F]\.SB")
CUT_CLIP = re.compile(r"C[0-9A-Z_]{4}\d{2}[0-9A-F]\.SB")
SOUND_EFFECT = re.compile(r"\d{1,4}[A-C]?S+\.SB")
VOCALISATION = re.compile(r"<[^>]*>|\([^)]*\)")


class Entry(NamedTuple):
    name: str
    bundle: int
    offset: int
    size: int


# --- the resource file -------------------------------------------------------------------------

def read_index(path: str | Path) -> dict[str, Entry]:
    """The QTBL table of queen.1c: name -> Entry; ValueError naming the file if malformed."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(HEADER)
        if len(head) < HEADER or head[:4] != MAGIC:
            raise ValueError(f"{path}: not a QTBL resource file (expected {MAGIC!r} at offset 0)")
        (count,) = struct.unpack(">H", head[13:15])
        table = f.read(count * ENTRY.size)
    if len(table) < count * ENTRY.size:
        raise ValueError(f"{path}: truncated table ({count} entries declared, "
                         f"{len(table) // ENTRY.size} present)")
    index = {}
    for name, bundle, offset, length in ENTRY.iter_unpack(table):
        entry = Entry(name.split(b"\0")[0].decode("ascii", "replace"), bundle, offset, length)
        if bundle != 1 or offset + length > size:  # other bundles would be queen.2, ...
            raise ValueError(f"{path}: entry {entry.name!r} (bundle {bundle}, bytes "
                             f"{offset}..{offset + length}) lies outside the file ({size} bytes)")
        index[entry.name] = entry
    return index


def read_resource(path: str | Path, index: dict[str, Entry], name: str) -> bytes:
    entry = index[name.upper()]  # the engine looks names up in upper case
    with open(path, "rb") as f:
        f.seek(entry.offset)
        return f.read(entry.size)


# --- dialogue files ----------------------------------------------------------------------------

def _entries(data: bytes, at: int, count: int) -> list[tuple[int, str]]:
    """(node id, sentence) for `count` entries starting at `at`."""
    out = []
    for _ in range(count):
        node = cutaway.i16(data, at + 2)
        text, at = cutaway.pascal_string(data, at + 4, 4)
        out.append((node, text))
    return out


def dialogue_sentences(data: bytes) -> list[tuple[str, str, str]]:
    """A .DOG file (header included) -> [(voice prefix, sentence, "P" or "J")]."""
    d = data[DOG_HEADER:]
    if len(d) < 32:
        raise ValueError("dialogue file shorter than its header")
    levels, key, joe_n, person_n = (cutaway.i16(d, at) for at in (0, 4, 6, 8))
    levels = abs(levels)  # negative: the conversation cannot be left
    person_at, _, again_at = struct.unpack_from(">HHH", d, 22)
    joe = _entries(d, 32 + 96 * levels, joe_n)
    person = _entries(d, person_at, person_n)
    person_again, at = cutaway.pascal_string(d, again_at, 2)
    joe_again, _ = cutaway.pascal_string(d, at, 2)
    out = [(f"{key:2d}SSSSJ", joe[0][1], "J")] if joe else []  # Joe's opening line
    out += [(f"{key:2d}{node:4X}J", text, "J") for node, text in joe[1:]]
    out += [(f"{key:2d}{node:4X}P", text, "P") for node, text in person]
    out += [(f"{key:2d}XXXXP", person_again, "P"), (f"{key:2d}XXXXJ", joe_again, "J")]
    return out


def segments(sentence: str) -> list[tuple[int, str]]:
    """(segment index, text) of the spoken segments of a sentence, commands removed."""
    out, index, start, i = [], 0, 0, 0
    while i < len(sentence):
        if sentence[i] != "*":
            i += 1
            continue
        command = sentence[i + 1:i + 3]
        if command not in NOT_SPOKEN:
            out.append((index, sentence[start:i]))
        i += 3 + (11 if command == "XY" else 0)
        index, start = index + 1, i
    if start < len(sentence):
        out.append((index, sentence[start:]))
    return out


def clean_text(segment: str) -> str:
    """A segment as spoken: "^_" (the font's trademark sign, not spoken) dropped, whitespace
    collapsed; punctuation stays for the normaliser."""
    return " ".join(segment.replace("^_", "").split())


def is_vocalisation(text: str) -> bool:
    """Only "<gulp>", "(sigh)" and the like: a sound, not words."""
    return bool(text) and not VOCALISATION.sub("", text).strip(" .,!?")


def speaker_of(dog_name: str) -> str:
    return re.sub(r"\d+$", "", dog_name.rsplit(".", 1)[0]) or dog_name


def dialogue_clips(index: dict[str, Entry], path: Path) -> dict[str, tuple[str, str]]:
    """Clip name ("030006J1.SB") -> (text, speaker) from every .DOG file of queen.1c."""
    clips = {}
    for name in sorted(n for n in index if n.endswith(".DOG")):
        try:
            sentences = dialogue_sentences(read_resource(path, index, name))
        except (ValueError, struct.error, IndexError) as e:
            raise ValueError(f"{path}: malformed dialogue file {name}: {e}") from None
        for prefix, sentence, who in sentences:
            for k, text in segments(sentence):
                clip = f"{prefix}{k + 1:X}".replace(" ", "0") + ".SB"
                clips[clip] = (clean_text(text), "JOE" if who == "J" else speaker_of(name))
    return clips


def object_speakers(index: dict[str, Entry], path: Path) -> tuple[dict[int, int], dict[int, str]]:
    """QUEEN.JAS + QUEEN2.JAS -> ({object: image}, {object: speaker name})."""
    table, descriptions = cutaway.object_table(read_resource(path, index, "QUEEN.JAS"))
    names = cutaway.text_lines(read_resource(path, index, "QUEEN2.JAS"))
    speakers = {n: cutaway.speaker_name(names[descriptions + name - 1])
                for n, (name, _) in table.items() if 0 < name and descriptions + name <= len(names)}
    return {n: image for n, (_, image) in table.items()}, speakers


def line_speaker(number: int, speakers: dict[int, str]) -> str:
    if number == 0:
        return "JOE"
    return speakers.get(number, cutaway.UNNAMED) if number > 0 else cutaway.UNNAMED


def cutaway_clips(index: dict[str, Entry], path: Path) -> dict[str, tuple[str, str]]:
    """Clip name ("C1A__032.SB") -> (text, speaker) from every .CUT file of queen.1c; none
    without QUEEN.JAS (it tells persons from things)."""
    if not {"QUEEN.JAS", "QUEEN2.JAS"} <= index.keys():
        return {}
    images, speakers = object_speakers(index, path)
    clips = {}
    for name in sorted(n for n in index if n.endswith(".CUT")):
        try:
            lines = cutaway.cut_lines(name, read_resource(path, index, name), images)
        except (ValueError, struct.error, IndexError) as e:
            raise ValueError(f"{path}: malformed cutaway file {name}: {e}") from None
        for line in lines:
            parts = [(0, line.sentence)] if line.spoken_whole else segments(line.sentence)
            for k, text in parts:
                clips[f"{line.prefix}{k + 1:X}.SB"] = (clean_text(text),
                                                       line_speaker(line.number, speakers))
    return clips


def clip_kind(name: str) -> str:
    """Why a .SB clip without dialogue or cutaway text is left out."""
    if SOUND_EFFECT.fullmatch(name):
        return "sound effect"
    if name.startswith("JOE"):
        return "Joe's remark (text in QUEEN.JAS, not read yet)"
    if CUT_CLIP.fullmatch(name):
        return "cutaway clip without a sentence"
    if CLIP.fullmatch(name) is None:
        return "other clip (text not known)"
    return "dialogue clip without a sentence"


# --- items and prepare -------------------------------------------------------------------------

def extract_clip(path: Path, entry: Entry, target: Path) -> Path:
    """Decode one clip's MP3 bytes with FFmpeg into a 16-bit FLAC file at the clip's rate, once
    (atomic; an existing file is kept). Not libsndfile: its MP3 decoder turns a varying few
    hundred of these clips into NaN samples from run to run, so the corpus would differ."""
    if not target.exists():
        with open(path, "rb") as f:
            f.seek(entry.offset)
            data = f.read(entry.size)
        samples, rate = ffmpeg_decode(io.BytesIO(data), f"{path}:{entry.name}")
        with atomic_path(target, fsync=False) as tmp:
            sf.write(str(tmp), np.clip(samples, -1.0, 1.0), rate, subtype="PCM_16", format="FLAC")
    return target


# Cutaway speakers are object names ("Trader Bob"), dialogue speakers .DOG file names ("BOB"):
# one character must be one speaker, or a held-out voice would also be heard in training.
CHARACTER_ALIASES = {"GORILLA": "APE", "AZURA_OBJ": "PRIN", "SHOWERING_AMAZON": "SHOWERAM"}


def same_character(name: str, dialogue_speakers: set[str]) -> str:
    """The dialogue speaker a cutaway speaker is: an alias, a word of the name (TRADER_BOB ->
    BOB, JOE_KING -> JOE), the longest dialogue name it starts with (ANDERSON -> AND); else
    UNNAMED: an object's or extra's line whose voice the game does not tell (a note may be read
    by Joe), never a held-out speaker."""
    if name in dialogue_speakers:
        return name
    if name in CHARACTER_ALIASES:
        return CHARACTER_ALIASES[name]
    words = [w for w in name.split("_") if w in dialogue_speakers]
    if words:
        return words[-1]
    starts = [s for s in dialogue_speakers if len(s) >= 3 and name.startswith(s)]
    return max(starts, key=len) if starts else cutaway.UNNAMED


def items(queen_1c: str | Path, audio_dir: str | Path, counts: Counter | None = None):
    """Importer items for every dialogue and cutaway clip, in name order; clips left out are counted in
    `counts` (reason -> clips), segments with no clip under "sentence segment without a clip"."""
    path, audio_dir = Path(queen_1c), Path(audio_dir)
    index = read_index(path)
    clips = dialogue_clips(index, path)
    names = {speaker for _, speaker in clips.values()}
    clips |= {clip: (text, same_character(speaker, names))
              for clip, (text, speaker) in cutaway_clips(index, path).items()}
    counts = Counter() if counts is None else counts
    counts["sentence segment without a clip"] += sum(1 for c, (t, _) in clips.items()
                                                    if t and c not in index)
    for name in sorted(n for n in index if n.endswith(".SB")):
        if name not in clips:
            counts[clip_kind(name)] += 1
            continue
        text, speaker = clips[name]
        uid = f"{speaker.lower()}-{name[:-3].lower()}"
        if not text:  # silence between two commands
            yield {"id": uid, "audio": f"{path.name}:{name}", "reject": (EMPTY_TEXT, "")}
            continue
        if is_vocalisation(text):
            yield {"id": uid, "audio": f"{path.name}:{name}", "reject": (NON_SPEECH, repr(text))}
            continue
        try:
            audio = extract_clip(path, index[name], audio_dir / f"{uid}.flac")
        except AudioError as e:
            yield {"id": uid, "audio": f"{path.name}:{name}", "reject": (UNDECODABLE, str(e))}
            continue
        yield {"id": uid, "audio": str(audio), "text": text, "speaker": speaker}


def find_queen_1c(cfg) -> Path:
    """queen.1c of data.source: the package .deb, its extracted root or the file itself."""
    source = source_dir(cfg, "queen")
    if source.is_file():
        return source
    found = find_dir(source, lambda d: (d / "queen.1c").is_file(), 5)
    if found is None:
        raise FileNotFoundError(f"queen: no queen.1c in {source}")
    return found / "queen.1c"


def prepare(cfg, progress: bool = True, summary: Summary | None = None) -> Summary:
    """Every dialogue and cutaway clip in one split, "all" (held-out splits: data_prep.heldout)."""
    queen_1c = find_queen_1c(cfg)
    audio_dir = Path(cfg.data.root) / "audio" / "queen"
    return prepare_one_split(cfg, "queen", lambda counts: items(queen_1c, audio_dir, counts),
                             progress, summary)
