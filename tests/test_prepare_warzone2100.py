"""Warzone 2100 importer: a tiny base.wz zip in the package's layout (audio.cfg with voice
sections, tutorial.js, a proximity-message .fodt, a sound effect, a clip without words, two
takes of one name) -> items and manifests. Sine-wave .ogg clips; no game data."""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path

import pytest

from conftest import sine_audio
from test_prepare_common import corpus_config, read_jsonl

from data_prep import warzone2100 as wz

GAME = "usr/share/games/warzone2100"

AUDIO_CFG = """audio_module
{
	/* audio format: audio [filename] [oneshot/loop] [volume 0-100] [range] */
/*Research*/
	audio	"pcv357.ogg"  	oneshot	100 1800  /*Research  Completed*/
	audio	"pcv485.ogg"  	oneshot	100 1800  /*Technology Transferred*/
/*Group & Commander Voices - Male */
	audio	"7.ogg" 		oneshot	100 1800
	audio	"com021.ogg" 	oneshot	100 1800  /*Scavengers Detected*/
/*VTOL Pilots*/
	/*Ver-2*/
	audio	"v-eloc2.ogg"   oneshot	100 1800  /*Enemy located*/
/*SFX*/
	audio	"rotlsr.ogg"	oneshot 100 1800	/*Rotary Laser*/
}
"""

TUTORIAL_JS = """	consoleVar = [
		{"audio": "tut1.ogg", "clear": false, "message": _("Oil resources are \\"key\\""), "state": 0},
		{"audio": "tut6.ogg", "clear": false, "message": undefined, "state": 2, "wait": 2},
	];
"""

FODT = """<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text>
<text:p>Cam1:</text:p><text:p><text:span>C1prox3.wav</text:span></text:p>
<text:p>\u201cThese scavengers control superior weapons technology it must be</text:p>
<text:p>recovered\u201d</text:p></office:text></office:body></office:document>
"""

CLIPS = {
    "audio/memressp/research/pcv357.ogg": 440,
    "audio/memressp/console/pcv485.ogg": 460,   # two takes of one line
    "audio/memressp/missmesg/pcv485.ogg": 470,
    "audio/memressp/cmndrvoc/7.ogg": 480,       # listed without a comment
    "audio/memressp/cmndrvoc/com021.ogg": 500,
    "audio/vtoltalk/v-eloc2.ogg": 520,
    "audio/sfx/weapons/rotlsr.ogg": 900,        # a sound effect
    "audio/tutorial/tut1.ogg": 540,
    "audio/tutorial/tut6.ogg": 560,             # message undefined
    "audio/taunts/taunt1/haha1.ogg": 580,       # no text anywhere
    "audio/proxmessages/c1prox3.ogg": 600,
}


def ogg(seconds: float = 2.5, freq: float = 440.0) -> bytes:
    return sine_audio(seconds, freq)


def make_base_wz(path: Path, clips=CLIPS, cfg: str | None = AUDIO_CFG) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        if cfg is not None:
            z.writestr("audio/audio.cfg", cfg)
        z.writestr("script/tutorial.js", TUTORIAL_JS)
        z.writestr("audio/proxmessages/c1prox.fodt", FODT)
        for member, freq in clips.items():
            z.writestr(member, ogg(freq=freq))
    return path


@pytest.fixture
def base_wz(tmp_path) -> Path:
    return make_base_wz(tmp_path / "pkg" / GAME / "base.wz")


def test_audio_cfg_voices():
    clips = wz.audio_cfg_clips(AUDIO_CFG)
    assert clips["pcv357.ogg"] == ("Research Completed", "warzone2100")
    assert clips["7.ogg"] == ("", "warzone2100-commander")
    assert clips["com021.ogg"] == ("Scavengers Detected", "warzone2100-commander")
    assert clips["v-eloc2.ogg"] == ("Enemy located", "warzone2100-vtol-pilot-2")
    assert clips["rotlsr.ogg"][1] == "warzone2100"  # a section without a voice name


def test_tutorial_and_proximity_texts():
    assert wz.tutorial_messages(TUTORIAL_JS) == {"tut1.ogg": 'Oil resources are "key"',
                                                 "tut6.ogg": ""}
    assert wz.proximity_lines(FODT.encode()) == {
        "c1prox3.ogg": "These scavengers control superior weapons technology it must be recovered"}


def test_items_ids_speakers_and_counts(base_wz, tmp_path):
    counts = Counter()
    out = list(wz.items(base_wz, tmp_path / "audio", counts))
    good = {i["id"]: (i["speaker"], i["text"]) for i in out if "reject" not in i}
    assert good == {
        "warzone2100-research-pcv357": ("warzone2100", "Research Completed"),
        "warzone2100-console-pcv485": ("warzone2100", "Technology Transferred"),
        "warzone2100-missmesg-pcv485": ("warzone2100", "Technology Transferred"),
        "warzone2100-cmndrvoc-com021": ("warzone2100-commander", "Scavengers Detected"),
        "warzone2100-vtoltalk-v-eloc2": ("warzone2100-vtol-pilot-2", "Enemy located"),
        "warzone2100-tutorial-tut1": ("warzone2100", 'Oil resources are "key"'),
        "warzone2100-proxmessages-c1prox3": ("warzone2100", "These scavengers control superior "
                                             "weapons technology it must be recovered")}
    assert [(i["id"], i["reject"][0]) for i in out if "reject" in i] == [
        ("warzone2100-weapons-rotlsr", wz.NON_SPEECH)]
    assert counts == {"listed in audio.cfg without a comment": 1,
                      "tutorial clip whose message is undefined in tutorial.js": 1,
                      "no text in the package data (audio/taunts/taunt1)": 1}
    audio = Path(next(i["audio"] for i in out if i["id"] == "warzone2100-console-pcv485"))
    with zipfile.ZipFile(base_wz) as z:
        assert audio.read_bytes() == z.read("audio/memressp/console/pcv485.ogg")
    mtime = audio.stat().st_mtime_ns  # a re-run keeps the copied file
    list(wz.items(base_wz, tmp_path / "audio"))
    assert audio.stat().st_mtime_ns == mtime


def test_prepare(base_wz, tmp_path):
    cfg = corpus_config(tmp_path, "warzone2100", base_wz.parents[4], test_splits=[])
    summary = wz.prepare(cfg, progress=False)
    entries = read_jsonl(Path(cfg.data.root) / "manifests" / "all.jsonl")
    assert len(entries) == 7 and summary.splits["all"][0] == 7
    texts = {e["id"]: e["text"] for e in entries}
    assert texts["warzone2100-research-pcv357"] == "research completed"
    assert [r.kind for r in summary.rejects] == [wz.NON_SPEECH]
    assert all((Path(cfg.data.root) / "manifests" / e["audio_filepath"]).is_file() for e in entries)
    assert any("1 listed in audio.cfg without a comment" in n for n in summary.notes)


def test_missing_names_the_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    cfg = corpus_config(tmp_path, "warzone2100", tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=f"no base.wz in {tmp_path / 'empty'}"):
        wz.find_base_wz(cfg)
    no_cfg = make_base_wz(tmp_path / "other" / "base.wz", cfg=None)
    cfg = corpus_config(tmp_path, "warzone2100", no_cfg)
    with pytest.raises(FileNotFoundError, match=f"no audio/audio.cfg in {no_cfg}"):
        wz.find_base_wz(cfg)
