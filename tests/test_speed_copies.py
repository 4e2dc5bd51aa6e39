"""Speed-perturbed copies of the real training speech (builtin.real_speed_factors, made by
data_prep/mixture.py): new voices of the training part only, reused on a re-run, dropped when
their source leaves training."""

import json

import numpy as np
import pytest
import soundfile as sf

from asr.config import Config, apply
from data_prep import mixture
from tests.test_mixture import _config, _corpus, _read

FACTORS = [0.9, 1.1]


def _mix(root, monkeypatch, **data):
    """The mixture of test_mixture's corpus (created in root once) with speed copies."""
    if not (root / "manifests").exists():
        (root / "real.json").write_text(json.dumps(_corpus(root)))
    real = json.loads((root / "real.json").read_text())
    monkeypatch.setattr(mixture, "import_real", lambda cfg, progress: [dict(e) for e in real])
    data = {"real_speed_factors": FACTORS, "channel_share": 0.0, **data}
    return mixture.make_mixture(_config(root, **data), progress=False)


def _copies(root) -> dict[str, dict]:
    """train_mix's speed copies by id (first of their repeats)."""
    out: dict[str, dict] = {}
    for e in _read(root, "train_mix"):
        if "speed" in e:
            out.setdefault(e["id"].split("_r")[0], e)
    return out


def _pitch(path) -> float:
    audio, rate = sf.read(path)
    return np.fft.rfftfreq(len(audio), 1 / rate)[np.argmax(np.abs(np.fft.rfft(audio)))]


def test_copies_are_new_voices_of_every_real_training_utterance(tmp_path, monkeypatch):
    report = _mix(tmp_path, monkeypatch)
    train_real = {e["id"]: e for e in _read(tmp_path, "train_real")}
    copies = _copies(tmp_path)
    assert set(copies) == {f"{i}-sp{f}" for i in train_real for f in FACTORS}
    for uid, e in copies.items():
        source_id, factor = uid.rsplit("-sp", 1)
        source = train_real[source_id]
        assert e["speed"] == float(factor) and e["speaker"] == f"{source['speaker']}-sp{factor}"
        assert e["text"] == source["text"]
        path = tmp_path / "manifests" / e["audio_filepath"]
        assert path.parent.name == "speed" and path.suffix == ".flac"
        info = sf.info(path)
        assert info.samplerate == 16000
        assert info.frames / 16000 == pytest.approx(e["duration"], abs=1e-3)
        assert e["duration"] == pytest.approx(source["duration"] / float(factor), abs=2e-3)
    # resampling: the 440 Hz tone of the source moves with the speed (pitch and formants too)
    for factor in FACTORS:
        assert _pitch(tmp_path / "manifests" / copies[f"queen-main-0-sp{factor:g}"]["audio_filepath"]) \
            == pytest.approx(440 * factor, abs=2)
    # repeated `times` like their corpus: queen 2, ktuberling 1
    ids = [e["id"] for e in _read(tmp_path, "train_mix")]
    assert ids.count("queen-main-0-sp0.9_r1") == 1 and "ktuberling-0-sp1.1_r1" not in ids
    assert len(ids) == len(set(ids))
    queen = report["train_mix"]["queen"]
    assert queen["speed"] == sum(i.startswith("queen-") and "-sp" in i for i in ids)
    copy_hours = sum(e["duration"] for e in copies.values()) / 3600
    assert report["real_speed_copies"] == {"factors": FACTORS, "utterances": len(copies),
                                           "hours": pytest.approx(copy_hours, abs=1e-3)}


def test_copies_never_of_heldout_speakers_or_lines(tmp_path, monkeypatch):
    _mix(tmp_path, monkeypatch, channel_share=0.5)
    held = _read(tmp_path, "test_real") + _read(tmp_path, "dev_real")
    assert held
    copies = _copies(tmp_path)
    sources = {uid.rsplit("-sp", 1)[0] for uid in copies}
    assert not sources & {e["id"] for e in held}
    assert not {e["speaker"].rsplit("-sp", 1)[0] for e in copies.values()} & {e["speaker"] for e in held}
    assert not {e["text"] for e in copies.values()} & {e["text"] for e in held}
    files = {p.stem for p in (tmp_path / "audio" / "speed").iterdir()}
    assert files == set(copies)  # nothing else made
    for split in ("test_real", "dev_real", "dev_mix", "test", "dev"):
        assert not any("speed" in e or "-sp" in e["id"] for e in _read(tmp_path, split))


def test_rerun_reuses_copies_and_drops_those_whose_source_left_training(tmp_path, monkeypatch):
    _mix(tmp_path, monkeypatch)
    speed_dir = tmp_path / "audio" / "speed"
    stamps = {p.name: p.stat().st_mtime_ns for p in speed_dir.iterdir()}
    (speed_dir / ".queen-main-0-sp0.9.flac.123.tmp").write_bytes(b"a killed run")
    _mix(tmp_path, monkeypatch)
    assert {p.name: p.stat().st_mtime_ns for p in speed_dir.iterdir()} == stamps

    # other held-out speakers, hedgewars no longer mixed in, one factor
    _mix(tmp_path, monkeypatch, seed=1, real_speed_factors=[1.1],
         real={"queen": 2, "ktuberling": 1})
    held = {e["id"] for s in ("test_real", "dev_real") for e in _read(tmp_path, s)}
    copies = _copies(tmp_path)
    assert {p.stem for p in speed_dir.iterdir()} == set(copies)
    assert copies and all(uid.endswith("-sp1.1") for uid in copies)
    assert not any(uid.startswith("hedgewars-") for uid in copies)
    assert not {uid.rsplit("-sp", 1)[0] for uid in copies} & held
    kept = [n for n in stamps if n.removesuffix(".flac") in copies]
    assert kept and all((speed_dir / n).stat().st_mtime_ns == stamps[n] for n in kept)

    _mix(tmp_path, monkeypatch, real_speed_factors=[], channel_share=0.5)  # off: none left
    assert not list(speed_dir.iterdir()) and not _copies(tmp_path)
    channel = {p.stem for p in (tmp_path / "audio" / "channel").iterdir()}
    assert channel and channel == {e["id"] for e in _read(tmp_path, "train_mix")
                                   if "/channel/" in e["audio_filepath"]}


def test_a_copy_of_unreadable_audio_is_skipped_and_counted(tmp_path, monkeypatch):
    real = _corpus(tmp_path)
    (tmp_path / "audio" / "queen-main-0.wav").write_bytes(b"not audio")  # always in training
    monkeypatch.setattr(mixture, "import_real", lambda cfg, progress: [dict(e) for e in real])
    report = mixture.make_mixture(_config(tmp_path, real_speed_factors=FACTORS, channel_share=0.0),
                                  progress=False)
    assert report["dropped"]["unreadable source audio (speed copy)"] == 2
    assert not any(uid.startswith("queen-main-0-sp") for uid in _copies(tmp_path))


@pytest.mark.parametrize("factors", [[0.0], [-0.9], [1.0], [0.9, 0.9], [float("nan")]])
def test_speed_factors_must_be_distinct_positive_and_not_one(factors):
    with pytest.raises(ValueError, match="builtin.real_speed_factors"):
        apply(Config(), {"builtin": {"real_speed_factors": factors}})


def test_speed_factors_from_the_command_line():
    cfg = Config()
    apply(cfg, {"builtin": {"real_speed_factors": "0.9,1.1"}})
    assert cfg.builtin.real_speed_factors == [0.9, 1.1] and Config().builtin.real_speed_factors == []
