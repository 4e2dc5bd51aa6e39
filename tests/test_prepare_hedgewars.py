"""Hedgewars voice packs importer: a fabricated voices/ tree in the package's layout (sine-wave
Ogg Vorbis clips, a localised pack, shared recordings) -> items and manifests. No game data."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from conftest import write_sine
from test_prepare_common import corpus_config, read_jsonl

from data_prep import hedgewars

VOICES = "usr/share/games/hedgewars/Data/Sounds/voices"


@pytest.fixture
def package(tmp_path) -> Path:
    voices = tmp_path / "pkg" / VOICES
    write_sine(voices / "British" / "Amazing.ogg", freq=300)
    write_sine(voices / "British" / "Youllregretthat.ogg", freq=350)
    write_sine(voices / "British" / "Laugh.ogg", freq=400)
    write_sine(voices / "British" / "Jump2.ogg", 0.4, freq=450)
    write_sine(voices / "Default" / "Uh-oh.ogg", freq=500)
    shutil.copy(voices / "British" / "Amazing.ogg", voices / "Default" / "Amazing.ogg")
    write_sine(voices / "Default" / "Melon.ogg", freq=550)  # filed twice: words unknown
    shutil.copy(voices / "Default" / "Melon.ogg", voices / "Default" / "Watchthis.ogg")
    write_sine(voices / "Default" / "Newtaunt.ogg", freq=600)
    write_sine(voices / "Default_es" / "Hello.ogg", freq=650)
    return tmp_path / "pkg"


def test_transcripts():
    assert hedgewars.transcript("Youllregretthat.ogg") == ("you'll regret that", "")
    assert hedgewars.transcript("Amazing.ogg") == ("amazing", "")
    assert hedgewars.transcript("Ow3.ogg")[0] is None
    assert hedgewars.transcript("Ooff1.ogg") == (None, hedgewars.NON_VERBAL["Ooff"])
    assert hedgewars.transcript("Newtaunt.ogg") == (None, "")


def test_items(package):
    counts = Counter()
    out = list(hedgewars.items(package / VOICES, counts))
    good = {i["id"]: (i["speaker"], i["text"]) for i in out if "reject" not in i}
    assert good == {"hedgewars-british-amazing": ("hedgewars-british", "amazing"),
                    "hedgewars-british-youllregretthat": ("hedgewars-british", "you'll regret that"),
                    "hedgewars-default-uh-oh": ("hedgewars-default", "uh oh")}
    assert hedgewars.speaker_of("Classic") == hedgewars.speaker_of("Default")  # shared recordings
    rejects = {i["id"]: i["reject"] for i in out if "reject" in i}
    assert rejects["hedgewars-british-laugh"] == (hedgewars.NON_SPEECH, "laughter: Laugh.ogg")
    assert rejects["hedgewars-british-jump2"][0] == hedgewars.NON_SPEECH
    assert rejects["hedgewars-default-amazing"] == (hedgewars.DUPLICATE_RECORDING,
                                                    "same bytes as British/Amazing.ogg")
    assert rejects["hedgewars-default-melon"][0] == hedgewars.AMBIGUOUS
    assert rejects["hedgewars-default-watchthis"][0] == hedgewars.AMBIGUOUS
    assert rejects["hedgewars-default-newtaunt"] == (hedgewars.UNLISTED, "Newtaunt.ogg")
    assert not any("default_es" in i["id"] for i in out)
    assert counts == {"clips of localised pack Default_es (not English)": 1}


def test_prepare(package, tmp_path):
    cfg = corpus_config(tmp_path, "hedgewars", package, test_splits=[])
    summary = hedgewars.prepare(cfg, progress=False)
    entries = read_jsonl(Path(cfg.data.root) / "manifests" / "all.jsonl")
    assert {e["id"]: e["text"] for e in entries} == {
        "hedgewars-british-amazing": "amazing",
        "hedgewars-british-youllregretthat": "you'll regret that",
        "hedgewars-default-uh-oh": "uh oh"}
    assert {e["speaker"] for e in entries} == {"hedgewars-british", "hedgewars-default"}
    assert summary.splits["all"][0] == 3 and len(summary.rejects) == 6
    kinds = Counter(r.kind for r in summary.rejects)
    assert kinds[hedgewars.NON_SPEECH] == 2
    assert any("1 clips of localised pack Default_es" in n for n in summary.notes)
    assert all((Path(cfg.data.root) / "manifests" / e["audio_filepath"]).is_file() for e in entries)


def test_missing_names_the_folder(tmp_path):
    (tmp_path / "empty" / "voices").mkdir(parents=True)
    cfg = corpus_config(tmp_path, "hedgewars", tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=f"voices.*{tmp_path / 'empty'}"):
        hedgewars.find_voices(cfg)
