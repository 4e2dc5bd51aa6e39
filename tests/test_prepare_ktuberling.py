"""KTuberling importer: a fabricated sounds/ folder in the package's layout (en.soundtheme,
sine-wave Ogg Vorbis clips, one clip the table leaves out) -> items and manifests. No game data."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from conftest import write_sine
from test_prepare_common import corpus_config, read_jsonl

from data_prep import ktuberling

SOUNDS = "usr/share/ktuberling/sounds"
TABLE = """<language code="en">

    <sound name="hat" file="en/hat.ogg" />
    <sound name="egypt_palmtree" file="en/egypt_palmtree.ogg" />
    <sound name="pizzeria_brocolli" file="en/pizzeria_broccolli.ogg" />
    <sound name="tux-laugh" file="en/tux_laugh.ogg" />

</language>
"""


def ogg(path: Path, seconds: float = 1.0, freq: float = 440.0) -> Path:
    return write_sine(path, seconds, freq, rate=22050, channels=2)  # stereo, like the package's


@pytest.fixture
def package(tmp_path) -> Path:
    sounds = tmp_path / "pkg" / SOUNDS
    sounds.mkdir(parents=True)
    (sounds / "en.soundtheme").write_text(TABLE, encoding="utf-8")
    for i, name in enumerate(["hat", "egypt_palmtree", "pizzeria_broccolli", "tux_laugh",
                              "tv_tree"]):
        ogg(sounds / "en" / f"{name}.ogg", freq=300 + 50 * i)
    ogg(sounds / "de" / "hut.ogg")  # another language: not read
    (sounds / "de.soundtheme").write_text('<language code="de" />', encoding="utf-8")
    return tmp_path / "pkg"


def test_words_of():
    assert ktuberling.words_of("egypt_palmtree") == "palm tree"
    assert ktuberling.words_of("moon_fallingstar") == "falling star"
    assert ktuberling.words_of("tv_breakdown_lorry") == "breakdown lorry"
    assert ktuberling.words_of("hat") == "hat"


def test_read_soundtheme(package):
    assert ktuberling.read_soundtheme(package / SOUNDS / "en.soundtheme")[1:3] == [
        ("egypt_palmtree", "en/egypt_palmtree.ogg"),
        ("pizzeria_brocolli", "en/pizzeria_broccolli.ogg")]


def test_items(package):
    counts = Counter()
    out = list(ktuberling.items(package / SOUNDS, "en", counts))
    good = {i["id"]: (i["speaker"], i["text"]) for i in out if "reject" not in i}
    assert good == {"ktuberling-en-hat": ("ktuberling-en", "hat"),
                    "ktuberling-en-egypt_palmtree": ("ktuberling-en", "palm tree"),
                    "ktuberling-en-pizzeria_brocolli": ("ktuberling-en", "broccoli"),
                    "ktuberling-en-tv_tree": ("ktuberling-en", "tree")}
    assert [i["reject"][0] for i in out if "reject" in i] == [ktuberling.NON_SPEECH]
    assert counts == {ktuberling.NOT_IN_TABLE: 1}


def test_prepare(package, tmp_path):
    cfg = corpus_config(tmp_path, "ktuberling", package, test_splits=[])
    summary = ktuberling.prepare(cfg, progress=False)
    entries = read_jsonl(Path(cfg.data.root) / "manifests" / "all.jsonl")
    assert [e["text"] for e in entries] == ["hat", "palm tree", "broccoli", "tree"]
    assert summary.splits["all"][0] == 4 and len(summary.rejects) == 1
    assert any(f"1 {ktuberling.NOT_IN_TABLE}" in n for n in summary.notes)


def test_malformed_table_names_the_file(package):
    table = package / SOUNDS / "en.soundtheme"
    table.write_text("<sounds>", encoding="utf-8")
    with pytest.raises(ValueError, match=str(table)):
        ktuberling.read_soundtheme(table)


def test_missing_names_the_folder(tmp_path):
    (tmp_path / "empty" / "sounds" / "en").mkdir(parents=True)  # no en.soundtheme
    cfg = corpus_config(tmp_path, "ktuberling", tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=f"en.soundtheme.*{tmp_path / 'empty'}"):
        ktuberling.find_sounds(cfg)
