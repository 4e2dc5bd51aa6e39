"""Tux Paint stamps importer: a fabricated stamps tree in the package's layout (descriptions with
their .txt, a sound effect, other-language and localised recordings, a description without its
.txt) -> items and manifests. Sine-wave .ogg files; no package data."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from conftest import write_sine
from test_prepare_common import corpus_config, read_jsonl

from data_prep import tuxpaint

STAMPS = "usr/share/tuxpaint/stamps"


@pytest.fixture
def root(tmp_path) -> Path:
    stamps = tmp_path / "pkg" / STAMPS
    birds = stamps / "animals" / "birds"
    birds.mkdir(parents=True)
    for name in ("owl.png", "hen.png"):
        (birds / name).write_bytes(b"")
    (birds / "owl.txt").write_text("An owl.\nfr.utf8=Un hibou.\nen_GB.utf8=An owl.\n", "utf-8")
    (birds / "hen.txt").write_text("\nA brown hen.\nde.utf8=Eine Henne.\n", "utf-8")
    write_sine(birds / "owl_desc.ogg", 1.2, 330)
    write_sine(birds / "owl_desc_fr.ogg", 1.0, 350)   # French: not imported
    write_sine(birds / "owl.ogg", 0.8, 880)           # the owl's call: not speech
    write_sine(birds / "hen_desc.ogg", 1.5, 550)
    write_sine(stamps / "animals" / "marsupials" / "wallaby_desc.ogg", 1.0, 600)  # no wallaby.txt
    math = stamps / "symbols" / "math"
    math.mkdir(parents=True)
    (math / "7.png").write_bytes(b"")
    (math / "7.txt").write_text("Seven.\n", "utf-8")
    write_sine(math / "7_en_GB.ogg", 0.5, 700)        # localised sound: its words are not written
    return tmp_path / "pkg"


def test_english_line(tmp_path):
    txt = tmp_path / "a.txt"
    txt.write_text("ach.utf8=Atudi.\nA duck.\nca.utf8=Un ànec.\n", "utf-8")
    assert tuxpaint.english_line(txt) == "A duck."
    txt.write_text("fr.utf8=Un canard.\n", "utf-8")
    assert tuxpaint.english_line(txt) == ""


def test_items_texts_and_counts(root):
    counts = Counter()
    out = list(tuxpaint.items(root / STAMPS, counts))
    good = {i["id"]: (i["speaker"], i["text"]) for i in out if "reject" not in i}
    assert good == {"tuxpaint-animals-birds-hen": ("tuxpaint", "A brown hen."),
                    "tuxpaint-animals-birds-owl": ("tuxpaint", "An owl.")}
    rejects = {i["id"]: i["reject"][0] for i in out if "reject" in i}
    assert rejects == {"tuxpaint-animals-birds-owl": tuxpaint.NON_SPEECH,
                       "tuxpaint-animals-marsupials-wallaby": "no transcript"}
    assert Path(next(i for i in out if i.get("text") == "An owl.")["audio"]).name == "owl_desc.ogg"
    assert counts == {tuxpaint.LEFT_OUT["other language"]: 1, tuxpaint.LEFT_OUT["localised sound"]: 1}


def test_prepare(root, tmp_path):
    cfg = corpus_config(tmp_path, "tuxpaint", root, test_splits=[])
    summary = tuxpaint.prepare(cfg, progress=False)
    entries = read_jsonl(Path(cfg.data.root) / "manifests" / "all.jsonl")
    assert {e["id"]: e["text"] for e in entries} == {"tuxpaint-animals-birds-hen": "a brown hen",
                                                     "tuxpaint-animals-birds-owl": "an owl"}
    assert summary.splits["all"][0] == 2 and len(summary.rejects) == 2
    assert sorted(r.kind for r in summary.rejects) == ["no transcript", tuxpaint.NON_SPEECH]
    assert any("1 descriptions in other languages" in n for n in summary.notes)


def test_missing_names_the_folder(tmp_path, root):
    cfg = corpus_config(tmp_path, "tuxpaint", tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=f"tuxpaint/stamps folder in {tmp_path / 'empty'}"):
        tuxpaint.find_stamps(cfg)
    for desc in (root / STAMPS).rglob("*_desc.ogg"):
        desc.unlink()
    cfg = corpus_config(tmp_path, "tuxpaint", root)
    with pytest.raises(FileNotFoundError, match="no spoken descriptions"):
        tuxpaint.find_stamps(cfg)
