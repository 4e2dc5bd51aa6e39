"""Flight of the Amazon Queen importer: a fabricated queen.1c in the real layout (QTBL table, one
.DOG dialogue file, one .CUT cutaway with QUEEN.JAS/QUEEN2.JAS naming its objects, MP3 clips of a
sine, a sound effect) -> items and manifests. No game data."""

from __future__ import annotations

import io
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import sine_audio
from test_prepare_common import corpus_config, read_jsonl

from data_prep import queen, queen_cutaway


def mp3(seconds: float = 1.0, freq: float = 440.0) -> bytes:
    return sine_audio(seconds, freq, rate=11025, fmt="MP3", subtype=None)


def pascal(text: str, align: int) -> bytes:
    raw = bytes([len(text)]) + text.encode("latin-1")
    return raw + b"\0" * (-len(raw) % align) if text else raw


def entry(node: int, text: str) -> bytes:
    return struct.pack(">hh", 0, node) + pascal(text, 4)


def dog_file(key: int = 5) -> bytes:
    """One level; Joe: opening line + node 6; the person: node 6; the meeting-again pair."""
    joe = entry(0, "Hello.*06Hi, I'm Joe.*03") + entry(6, "Where is the *XY00(237,112)parrot?")
    person = entry(6, "*01Oop oop!*FL") + entry(7, "Super Soldier Treatment^_!")
    joe_at = 32 + 96
    person_at = joe_at + len(joe)
    cut_at = person_at + len(person)
    cut = struct.pack(">hh", 0, 0) + pascal("c1a.CUT", 2)
    again = pascal("<gulp>", 2) + pascal("", 2)
    head = struct.pack(">hhhhh", 1, key, key, 2, 2) + b"\0" * 12 + \
        struct.pack(">HHH", person_at, cut_at, cut_at + len(cut))
    data = head + b"\0" * (32 - len(head)) + b"\0" * 96 + joe + person + cut + again
    return b"AmBk" + b"\0" * 8 + b"Datas   " + data


BANK = b"AmBk" + b"\0" * 8 + b"Datas   "


def cut_object(number: int, anim_list: int = 0, execute: int = 0, persons=()) -> bytes:
    fields = [0] * 17
    fields[0], fields[4], fields[5] = number, anim_list, execute
    return struct.pack(">17h", *fields) + struct.pack(f">h{len(persons)}h", len(persons), *persons)


def sentence_block(texts: list[str]) -> bytes:
    """Pascal strings padded to 2 bytes from an even start (an empty one takes 1 byte)."""
    out = b""
    for text in texts:
        out += bytes([len(text)]) + text.encode("latin-1")
        out += b"\0" * (len(out) % 2 if text else 0)
    return out


def cut_file() -> bytes:
    """Joe (two segments), an animated crate (one frame), Trader Bob, a spoken text object."""
    frames = struct.pack(">10h", 5, 1, 3, 0, 0, 0, 0, 100, 0, 0) + struct.pack(">h", -2)
    objects = (cut_object(0, persons=[-1]) + cut_object(5, execute=1) + frames
               + cut_object(2) + cut_object(-2))
    sentences = sentence_block(["*FL", "Hello there.*03Bye.", "", "Welcome!", "Computer says no."])
    sentence_at = 12 + len(objects)
    state_at = sentence_at + len(sentences)
    head = struct.pack(">HhhHHH", 0, -4, 0, state_at, sentence_at, state_at + 2)
    return BANK + head + objects + sentences + struct.pack(">hH", 0, 0)


def jas_files() -> tuple[bytes, bytes]:
    """Five objects: 2 is Trader Bob (a person, image -3), 5 a crate; one description."""
    objects = {2: (1, -3), 5: (-2, 0)}  # name index (negative: turned off), image
    table = b"".join(struct.pack(">8h", objects.get(i, (0, 0))[0], 0, 0, 0, 0, 1, 0,
                                 objects.get(i, (0, 0))[1]) for i in range(1, 6))
    return (BANK + struct.pack(">4H", 1, 2, 5, 1) + table,
            b"A fine crate*24\r\nTrader Bob\r\ncrate\r\n")


def make_queen_1c(path: Path, resources: dict[str, bytes]) -> Path:
    names = sorted(resources)
    offset = 15 + 21 * len(names)
    table, blobs = b"", b""
    for name in names:
        table += struct.pack(">12sBII", name.encode(), 1, offset + len(blobs), len(resources[name]))
        blobs += resources[name]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"QTBL" + b"CEM10\0" + b"\0\0" + b"\1" + struct.pack(">H", len(names))
                     + table + blobs)
    return path


RESOURCES = {
    "APE2.DOG": dog_file(),
    "C1A.CUT": cut_file(),
    "QUEEN.JAS": jas_files()[0],
    "QUEEN2.JAS": jas_files()[1],
    "C1A__011.SB": mp3(0.9, 300),   # Joe: "Hello there."
    "C1A__012.SB": mp3(0.4, 310),   # Joe: "Bye." (segment 2, after *03)
    "C1A__031.SB": mp3(0.7, 320),   # Trader Bob: "Welcome!" (object 3, after the crate)
    "C1A__041.SB": mp3(0.8, 330),   # a text object: "Computer says no."
    "C1A__051.SB": mp3(0.2, 340),   # no fifth object: counted
    "05SSSSJ2.SB": mp3(1.0, 440),   # "Hi, I'm Joe."
    "050006J1.SB": mp3(1.2, 550),   # "Where is the"
    "050006P2.SB": mp3(0.8, 660),   # "Oop oop!" (segment 2: after *01)
    "050007P1.SB": mp3(1.5, 330),   # the trademark sign dropped
    "05XXXXP1.SB": mp3(0.5, 770),   # "<gulp>": not words
    "12SSSSSS.SB": mp3(0.3, 880),   # a sound effect
    "JOE00011.SB": mp3(0.3, 990),   # Joe's remark: its text (QUEEN.JAS) is not read yet
}


@pytest.fixture
def queen_1c(tmp_path) -> Path:
    return make_queen_1c(tmp_path / "pkg" / "usr/share/scummvm/foatq/queen.1c", RESOURCES)


def test_index_and_resource(queen_1c):
    index = queen.read_index(queen_1c)
    assert set(index) == set(RESOURCES) and all(e.bundle == 1 for e in index.values())
    assert queen.read_resource(queen_1c, index, "ape2.dog") == RESOURCES["APE2.DOG"]


def test_segments_strip_commands():
    assert queen.segments("Hello.*06Hi, I'm Joe.*03") == [(0, "Hello."), (1, "Hi, I'm Joe.")]
    assert queen.segments("*01Oop oop!") == [(0, ""), (1, "Oop oop!")]
    assert queen.segments("Where is the *XY00(237,112)parrot?") == [(0, "Where is the "),
                                                                    (1, "parrot?")]
    assert queen.segments("Grab*GDthis.") == [(1, "this.")]  # a grab: no clip before it
    assert queen.clean_text(" Super Soldier Treatment^_! ") == "Super Soldier Treatment!"


def test_dialogue_clips(queen_1c):
    clips = queen.dialogue_clips(queen.read_index(queen_1c), queen_1c)
    assert clips["05SSSSJ1.SB"] == ("Hello.", "JOE")
    assert clips["05SSSSJ2.SB"] == ("Hi, I'm Joe.", "JOE")
    assert clips["050006J2.SB"] == ("parrot?", "JOE")
    assert clips["050006P1.SB"] == ("", "APE") and clips["050006P2.SB"] == ("Oop oop!", "APE")
    assert clips["05XXXXP1.SB"] == ("<gulp>", "APE")


def test_cut_lines():
    images = {2: -3, 5: 0}
    lines = queen_cutaway.cut_lines("C1A.CUT", cut_file(), images)
    assert [(l.prefix, l.sentence, l.number, l.spoken_whole) for l in lines] == [
        ("C1A__01", "Hello there.*03Bye.", 0, False), ("C1A__03", "Welcome!", 2, False),
        ("C1A__04", "Computer says no.", -2, True)]
    assert queen_cutaway.voice_prefix("c100a.cut", 12) == "C100A12"
    assert queen_cutaway.speaker_name("Mary-Lou") == "MARY_LOU"


def test_cutaway_clips(queen_1c):
    clips = queen.cutaway_clips(queen.read_index(queen_1c), queen_1c)
    assert clips == {"C1A__011.SB": ("Hello there.", "JOE"), "C1A__012.SB": ("Bye.", "JOE"),
                     "C1A__031.SB": ("Welcome!", "TRADER_BOB"),
                     "C1A__041.SB": ("Computer says no.", queen_cutaway.UNNAMED)}


def test_malformed_cut_names_the_file(tmp_path):
    path = make_queen_1c(tmp_path / "queen.1c", {**RESOURCES, "C1A.CUT": cut_file()[:60]})
    with pytest.raises(ValueError, match="C1A.CUT"):
        queen.cutaway_clips(queen.read_index(path), path)


def test_cutaway_speakers_are_the_dialogue_characters():
    dialogue = {"APE", "AND", "BOB", "JOE", "PRIN", "SEC"}
    assert [queen.same_character(n, dialogue) for n in (
        "APE", "GORILLA", "TRADER_BOB", "JOE_KING", "ANDERSON", "SECRETARY", "PRINCESS_AZURA",
        "NOTE", "UNNAMED")] == ["APE", "APE", "BOB", "JOE", "AND", "SEC", "PRIN", "UNNAMED",
                                "UNNAMED"]


def test_items_extract_and_count(queen_1c, tmp_path):
    counts = Counter()
    out = list(queen.items(queen_1c, tmp_path / "audio", counts))
    good = {i["id"]: i for i in out if "reject" not in i}
    assert {k: (v["speaker"], v["text"]) for k, v in good.items()} == {
        "joe-05ssssj2": ("JOE", "Hi, I'm Joe."), "joe-050006j1": ("JOE", "Where is the"),
        "ape-050006p2": ("APE", "Oop oop!"), "ape-050007p1": ("APE", "Super Soldier Treatment!"),
        "joe-c1a__011": ("JOE", "Hello there."), "joe-c1a__012": ("JOE", "Bye."),
        "unnamed-c1a__031": ("UNNAMED", "Welcome!"),  # no BOB.DOG: the voice is not known
        "unnamed-c1a__041": ("UNNAMED", "Computer says no.")}
    audio = Path(good["ape-050006p2"]["audio"])
    assert audio.suffix == ".flac" and sf.info(str(audio)).samplerate == 11025
    decoded, _ = sf.read(io.BytesIO(RESOURCES["050006P2.SB"]), dtype="float32")
    assert np.abs(sf.read(str(audio), dtype="float32")[0] - decoded).max() < 1e-3
    assert [i["reject"][0] for i in out if "reject" in i] == [queen.NON_SPEECH]
    assert counts["sound effect"] == 1 and counts[queen.clip_kind("JOE00011.SB")] == 1
    assert counts["cutaway clip without a sentence"] == 1
    mtime = audio.stat().st_mtime_ns  # a re-run keeps the extracted file
    list(queen.items(queen_1c, tmp_path / "audio"))
    assert audio.stat().st_mtime_ns == mtime


def test_prepare(queen_1c, tmp_path):
    cfg = corpus_config(tmp_path, "queen", queen_1c.parents[3], test_splits=[])
    summary = queen.prepare(cfg, progress=False)
    entries = read_jsonl(Path(cfg.data.root) / "manifests" / "all.jsonl")
    assert summary.splits["all"][:1] == [8] and len(summary.rejects) == 1
    assert {e["id"]: e["text"] for e in entries}["joe-05ssssj2"] == "hi i'm joe"
    assert all((Path(cfg.data.root) / "manifests" / e["audio_filepath"]).is_file() for e in entries)
    assert any("1 sound effect" in n for n in summary.notes)


@pytest.mark.parametrize("damage", ["magic", "truncated", "outside"])
def test_malformed_names_the_file(queen_1c, damage):
    data = bytearray(queen_1c.read_bytes())
    if damage == "magic":
        data[:4] = b"XXXX"
    elif damage == "truncated":
        del data[40:]
    else:
        struct.pack_into(">I", data, 15 + 13, len(data))  # first entry starts at the end
    queen_1c.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=str(queen_1c)):
        queen.read_index(queen_1c)


def test_missing_names_the_folder(tmp_path):
    cfg = corpus_config(tmp_path, "queen", tmp_path)
    with pytest.raises(FileNotFoundError, match="queen.1c"):
        queen.find_queen_1c(cfg)
