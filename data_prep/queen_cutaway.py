"""Flight of the Amazon Queen: the cutaway scenes (.CUT files) and the object names of QUEEN.JAS
and QUEEN2.JAS, for data_prep.queen (its module docstring describes the formats as verified)."""

from __future__ import annotations

import re
import struct
from typing import NamedTuple

BANK_HEADER = 20  # the AMOS "AmBk" bank header before a .CUT or .JAS file's data
CUT_HEADER = struct.Struct(">HhhHHH")  # panel, object count, flags, 3 offsets
CUT_OBJECT = struct.Struct(">17h")
ANIM_FRAME = 2 * 9  # after its header: frame, speed, bank, mx, my, cx, cy, scale, song
ANIM_END = -2
PERSON_IMAGES = (-3, -4)  # an object whose image is -3/-4 is a person (facing left/right)
SPOKEN_TEXT = (-2, -3)  # object -2: text spoken, -3: displayed and spoken; -4 displayed only
ROOM_FADE = -1  # treated as Joe
UNNAMED = "UNNAMED"  # text objects (-2, -3): the game names no speaker


class CutObject(NamedTuple):
    number: int
    anim_list: int
    execute: int
    from_object: int


class CutLine(NamedTuple):
    prefix: str  # voice clip prefix: "C1A__03" (segment number and ".SB" follow)
    sentence: str
    number: int  # the object speaking: 0 Joe, > 0 an object of QUEEN.JAS, < 0 a text
    spoken_whole: bool  # a text object: one clip (segment 1) for the whole sentence


def i16(data: bytes, at: int) -> int:
    """The big-endian signed 16-bit integer at `at` (the game's resource files are big-endian)."""
    return struct.unpack_from(">h", data, at)[0]


def pascal_string(data: bytes, at: int, align: int = 2) -> tuple[str, int]:
    """A length-prefixed string at `at` and the offset after it (padded to `align`)."""
    n = data[at]
    text = data[at + 1:at + 1 + n].decode("latin-1")
    return text, (at + 1 + n + align - 1) & ~(align - 1) if n else at + 1


def _skip_animation(d: bytes, at: int) -> int:
    """The offset after an object's animation frames (ended by a -2 header)."""
    while i16(d, at) != ANIM_END:
        at += 2 + ANIM_FRAME
    return at + 2


def voice_prefix(cut_name: str, index: int) -> str:
    """"C1A.CUT", object 3 -> "C1A__03": the base name padded with "_" to 5, the index."""
    return cut_name.rsplit(".", 1)[0].upper().ljust(5, "_") + f"{index:02d}"


def is_person(obj: CutObject, images: dict[int, int]) -> bool:
    """Joe or a person object (image -3/-4) without an animation list: it speaks."""
    if obj.from_object > 0 or obj.anim_list:
        return False
    return obj.number == 0 or (obj.number > 0 and images.get(obj.number) in PERSON_IMAGES)


def cut_lines(name: str, data: bytes, images: dict[int, int]) -> list[CutLine]:
    """A .CUT file (bank header included) -> the lines its objects speak, in order; `images`:
    object number -> image (QUEEN.JAS), which tells persons from things."""
    d = data[BANK_HEADER:]
    _, count, _, _, sentence_at, _ = CUT_HEADER.unpack_from(d, 0)
    _, sentence_at = pascal_string(d, sentence_at)  # the entry string (Joe's facing)
    at, out = CUT_HEADER.size, []
    for i in range(abs(count)):
        obj = CutObject(*(CUT_OBJECT.unpack_from(d, at)[k] for k in (0, 4, 5, 12)))
        if obj.number == ROOM_FADE:
            obj = obj._replace(number=0)
        at += CUT_OBJECT.size
        at += 2 + 2 * i16(d, at)  # the persons turned on
        sentence, sentence_at = pascal_string(d, sentence_at)
        if obj.number in SPOKEN_TEXT:
            out.append(CutLine(voice_prefix(name, i + 1), sentence, obj.number, True))
        elif is_person(obj, images):
            if sentence != "*" and not sentence.startswith("#"):  # "#": the credits start
                out.append(CutLine(voice_prefix(name, i + 1), sentence, obj.number, False))
        elif obj.number not in (-4,) and obj.from_object <= 0 and obj.execute:
            at = _skip_animation(d, at)
    return out


# --- QUEEN.JAS and QUEEN2.JAS ------------------------------------------------------------------

def object_table(jas: bytes) -> tuple[dict[int, tuple[int, int]], int]:
    """QUEEN.JAS (bank header included) -> ({object number: (name index, image)}, description
    count: where the object names start in QUEEN2.JAS)."""
    d = jas[BANK_HEADER:]
    _, _, objects, descriptions = struct.unpack_from(">4H", d, 0)
    table = {}
    for i in range(objects):
        name, *_, image = struct.unpack_from(">8h", d, 8 + 16 * i)
        table[i + 1] = (abs(name), image)
    return table, descriptions


def text_lines(text_file: bytes) -> list[str]:
    """QUEEN2.JAS: one string a line (CR LF)."""
    return text_file.decode("latin-1").split("\r\n")


def speaker_name(name: str) -> str:
    """An object name as a speaker: "Trader Bob" -> "TRADER_BOB"."""
    return re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")
