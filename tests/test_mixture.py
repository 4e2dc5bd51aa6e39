"""The built-in mixture (data_prep/mixture.py): real corpora held out by speaker and line in
every source, repeated, passed through seeded random channels, and the language-model text."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.config import Config, apply
from asr.data import effects as A
from data_prep import mixture
from data_prep.builtin.text import lm_sentences
from data_prep.heldout import choose_per_source
from tests.conftest import write_sine


def _entry(uid, speaker, text, seconds=1.0):
    return {"id": uid, "audio_filepath": f"../audio/{uid}.wav", "duration": seconds, "text": text,
            "speaker": speaker}


def _corpus(root: Path) -> list[dict]:
    """Synthetic train/dev/test manifests and two fake real corpora (wavs on disk); returns the
    real entries as import_real gives them."""
    mdir = root / "manifests"
    mdir.mkdir(parents=True)
    splits = {"train": [_entry(f"syn-{i}", f"espeak:v{i % 3}", f"synthetic line {i}")
                        for i in range(20)],
              "dev": [_entry("syn-dev", "espeak:v0", "a synthetic dev line")],
              "test": [_entry("syn-test", "espeak:v1", "a synthetic test line")]}
    splits["train"].append(_entry("syn-leak", "espeak:v2", "queen line 0 of s1"))
    real = [_entry(f"queen-{s}-{i}", f"queen:S{s}", f"queen line {i} of s{s}", 2.0 + s)
            for s in range(8) for i in range(4)]
    real += [_entry(f"queen-main-{i}", "queen:MAIN", f"main line {i}", 10.0) for i in range(30)]
    real += [_entry(f"hedgewars-{s}-{i}", f"hedgewars:P{s}", f"pack {s} word {i}") for s in range(4)
             for i in range(3)]
    real += [_entry("ktuberling-0", "ktuberling:K", "ball")]
    for e in [*splits["train"], *splits["dev"], *splits["test"], *real]:
        write_sine(root / "audio" / f"{e['id']}.wav", e["duration"], fmt="WAV", subtype="PCM_16")
    for split, entries in splits.items():
        (mdir / f"{split}.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    # the words of every transcript but "grunt", so they count as English (mixture.drop_invented)
    text = ("synthetic line 1\na synthetic test line\nqueen of s0 s1 s2 s3 s4 s5 s6 s7 main pack "
            "word 0 1 2 3 4 5 6 7 8 29 ball\n")
    (mdir / "train_text.txt").write_text(text)
    (mdir / "synthetic_text.txt").write_text(text)  # as data_prep.builtin writes both
    return real


def _config(root: Path, **data) -> Config:
    cfg = Config()
    apply(cfg, {"data": {"root": str(root), "nj": 1, "seed": 0, "channel_share": 0.5,
                         "real": {"queen": 2, "hedgewars": 1.5, "ktuberling": 1},
                         "real_test_hours": 0.01, "real_dev_hours": 0.01, **data}})
    return cfg


def _read(root: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (root / "manifests" / f"{split}.jsonl").open()]


@pytest.fixture
def mixed(tmp_path, monkeypatch):
    real = _corpus(tmp_path)
    monkeypatch.setattr(mixture, "import_real", lambda cfg, progress: [dict(e) for e in real])
    report = mixture.make_mixture(_config(tmp_path), progress=False)
    return tmp_path, report


def test_heldout_by_speaker_and_line_in_every_source(mixed):
    root, report = mixed
    test, dev, train = (_read(root, s) for s in ("test_real", "dev_real", "train_mix"))
    speakers = {s: {e["speaker"] for e in es} for s, es in (("test", test), ("dev", dev),
                                                             ("train", train))}
    assert speakers["test"] and speakers["dev"]
    assert not speakers["test"] & speakers["dev"] and not (speakers["test"] | speakers["dev"]) & speakers["train"]
    # both sources with several voices give a held-out voice; the single-voice one stays in train
    assert {s.split(":")[0] for s in speakers["test"]} == {"queen", "hedgewars"}
    assert "ktuberling:K" in speakers["train"] and "queen:MAIN" in speakers["train"]
    held_lines = {e["text"] for e in test + dev}
    assert not held_lines & {e["text"] for e in train}
    lm = set((root / "manifests" / "train_text.txt").read_text().split("\n"))
    assert not held_lines & lm and "a synthetic test line" not in lm
    assert "main line 3" in lm and "synthetic line 1" in lm
    assert {e["id"] for e in _read(root, "dev_mix")} == {"syn-dev"} | {e["id"] for e in dev}
    assert report["dropped"].get("synthetic utterance speaking a real held-out line", 0) == (
        "queen line 0 of s1" in held_lines)


def test_invented_words_are_dropped_and_never_held_out(tmp_path, monkeypatch):
    real = _corpus(tmp_path)
    grunts = [_entry(f"queen-ape-{i}", "queen:APE", f"grunt grunt {i}", 2.0) for i in range(6)]
    grunts += [_entry("queen-ape-6", "queen:APE", "queen grunt", 2.0)]  # half English: kept
    for e in grunts:
        write_sine(tmp_path / "audio" / f"{e['id']}.wav", 2.0, fmt="WAV", subtype="PCM_16")
    monkeypatch.setattr(mixture, "import_real", lambda cfg, progress: [dict(e) for e in real + grunts])
    report = mixture.make_mixture(_config(tmp_path), progress=False)
    assert report["dropped"]["transcript mostly invented words (animal sounds, invented language)"] == 6
    assert "queen:APE" not in report["test_real"]["speakers"] + report["dev_real"]["speakers"]
    assert mixture.invented_share("ungh chunga gorilla", {"gorilla"}) == 2 / 3


def test_repeats_and_channels(mixed):
    root, report = mixed
    train = _read(root, "train_mix")
    ids = [e["id"] for e in train]
    assert len(ids) == len(set(ids))
    main = [i for i in ids if i.startswith("queen-main-")]
    assert len(main) == 60 and sum(i.endswith("_r1") for i in main) == 30  # queen: 2 times
    packs = [i for i in ids if i.startswith("hedgewars-")]
    base = {i.split("_r")[0] for i in packs}
    assert len(base) < len(packs) < 2 * len(base)  # 1.5 times: a seeded half repeated
    channel = [e for e in train if "/channel/" in e["audio_filepath"]]
    assert 0.25 < len(channel) / len(train) < 0.75  # channel_share 0.5 over every source
    assert {e["speaker"].split(":")[0] for e in channel} >= {"espeak", "queen"}
    for e in channel[:5]:
        audio, rate = sf.read(root / "manifests" / e["audio_filepath"])
        assert rate == 16000 and len(audio) == pytest.approx(e["duration"] * 16000, abs=1)
    assert report["train_mix"]["queen"]["utterances"] == len([i for i in ids if i.startswith("queen-")])


def test_mixture_is_reproducible_for_a_seed(tmp_path, monkeypatch):
    outputs = []
    for run, seed in (("a", 0), ("b", 0), ("c", 1)):
        root = tmp_path / run
        real = _corpus(root)
        monkeypatch.setattr(mixture, "import_real", lambda cfg, progress, real=real: [dict(e) for e in real])
        mixture.make_mixture(_config(root, seed=seed), progress=False)
        train = _read(root, "train_mix")
        audio = {e["id"]: sf.read(root / "manifests" / e["audio_filepath"])[0].tobytes()
                 for e in train if "/channel/" in e["audio_filepath"]}
        outputs.append(([e["id"] for e in train], _read(root, "test_real"), audio))
    assert outputs[0] == outputs[1]
    assert outputs[0][:2] != outputs[2][:2]


def test_resume_keeps_channel_copies(mixed):
    root, _ = mixed
    channel = sorted((root / "audio" / "channel").glob("*.wav"))
    stamps = [p.stat().st_mtime_ns for p in channel]
    splits = [(root / "manifests" / f"{s}.jsonl").read_text() for s in ("train_mix", "test_real")]
    cfg = _config(root)
    mixture.make_mixture(cfg, progress=False)
    assert [p.stat().st_mtime_ns for p in channel] == stamps
    assert sorted((root / "audio" / "channel").glob("*.wav")) == channel
    # the same mixture: the rewritten train_text.txt is not the next run's vocabulary
    assert [(root / "manifests" / f"{s}.jsonl").read_text() for s in ("train_mix", "test_real")] == splits


def test_unreadable_real_audio_is_skipped_and_counted(tmp_path, monkeypatch):
    real = _corpus(tmp_path)
    for e in [e for e in real if e["speaker"] == "queen:MAIN"][:3]:  # always in training
        (tmp_path / "audio" / f"{e['id']}.wav").write_bytes(b"not audio")
    monkeypatch.setattr(mixture, "import_real", lambda cfg, progress: [dict(e) for e in real])
    report = mixture.make_mixture(_config(tmp_path, channel_share=1.0), progress=False)
    assert report["dropped"]["unreadable source audio"] == 6  # 3 utterances, 2 copies each
    assert not any(e["id"].startswith("queen-main-0") for e in _read(tmp_path, "train_mix"))


def test_choose_per_source_gives_each_source_its_share():
    entries = [_entry(f"q{s}-{i}", f"queen:S{s}", f"q{s}-{i}", 10) for s in range(40) for i in range(3)]
    entries += [_entry(f"h{s}", f"hedgewars:P{s}", f"h{s}", 5) for s in range(5)]
    entries += [_entry("t", "tuxpaint:T", "t", 50)]
    test, dev, none = choose_per_source(entries, 0.05, 0.05, seed=0)
    assert {s.split(":")[0] for s in test} == {"queen", "hedgewars"} == {s.split(":")[0] for s in dev}
    assert (test, dev, none) == choose_per_source(entries, 0.05, 0.05, seed=0) and none == []


def test_a_source_whose_voices_share_their_lines_gives_no_heldout_speaker():
    entries = [_entry(f"q{s}-{i}", f"queen:S{s}", f"line {s} {i}", 10) for s in range(40) for i in range(3)]
    entries += [_entry(f"h{s}-{w}", f"hedgewars:P{s}", w, 5) for s in range(5) for w in ("ow", "fire")]
    test, dev, none = choose_per_source(entries, 0.05, 0.05, seed=0)
    assert none == ["hedgewars"] and all(s.startswith("queen:") for s in test + dev)


def test_fetch_package_uses_a_deb_at_hand_and_explains_a_failed_download(tmp_path, monkeypatch):
    (tmp_path / "have").mkdir()
    deb = tmp_path / "have" / "hedgewars-data_1.0_all.deb"
    deb.write_bytes(b"!<arch>\n")
    assert mixture.fetch_package("hedgewars-data", [tmp_path / "have", tmp_path / "cache"]) == deb
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no apt-get
    with pytest.raises(RuntimeError, match="apt-get download no-such-package"):
        mixture.fetch_package("no-such-package", [tmp_path / "cache"])
    with pytest.raises(ValueError, match="unknown corpus 'atlantis'"):
        mixture.debian_package("atlantis")


def test_random_channel_is_seeded_and_keeps_the_length():
    wav = torch.sin(torch.arange(16000 * 2) * 0.05) * 0.5
    seen = set()
    for seed in range(40):
        out, stages = A.random_channel(wav, 16000, torch.Generator().manual_seed(seed))
        again, _ = A.random_channel(wav, 16000, torch.Generator().manual_seed(seed))
        assert out.shape == wav.shape and torch.equal(out, again) and out.abs().max() <= 1.0
        seen.update(s.rstrip("0123456789.k") for s in stages)
    assert seen >= {"reverb", "noise", "lowpass", "telephone", "mp", "vorbis", "opus"}


@pytest.mark.parametrize("codec", list(A.CODECS))
def test_codec_round_trip_at_its_lowest_rate(codec):
    wav = torch.sin(torch.arange(16000) * 0.1) * 0.5
    _, _, rates, levels = A.CODECS[codec]
    out = A.codec_round_trip(wav, 16000, codec, rates[0], levels[1])
    assert out.shape == wav.shape and not torch.equal(out, wav)
    assert torch.nn.functional.cosine_similarity(out, wav, dim=0) > 0.8


def test_lm_sentences_extend_and_exclude(tmp_path):
    text = tmp_path / "train_text.txt"
    text.write_text("one two three\nheld out line\n")
    out = lm_sentences(text, ["a real line", "one two three"], ["an extra line"],
                       exclude={"held out line"})
    assert out == ["one two three", "a real line", "an extra line"]


def test_test_real_telephone_is_test_real_through_the_telephone_line(tmp_path, monkeypatch):
    real = _corpus(tmp_path)
    noise = np.random.default_rng(0)
    for e in real:  # broadband audio, so the telephone band shows
        sf.write(tmp_path / "audio" / f"{e['id']}.wav",
                 0.1 * noise.standard_normal(int(e["duration"] * 16000)), 16000, subtype="PCM_16")
    monkeypatch.setattr(mixture, "import_real", lambda cfg, progress: [dict(e) for e in real])
    report = mixture.make_mixture(_config(tmp_path, real_degraded=["telephone"]), progress=False)
    test, tel = _read(tmp_path, "test_real"), _read(tmp_path, "test_real_telephone")
    assert [(e["id"], e["text"], e["speaker"]) for e in tel] == [
        (e["id"], e["text"], e["speaker"]) for e in test]
    assert report["test_real_telephone"] == report["test_real"]
    for e in tel[:3]:
        audio, rate = sf.read(tmp_path / "manifests" / e["audio_filepath"])
        spec = np.abs(np.fft.rfft(audio)) ** 2
        freqs = np.fft.rfftfreq(len(audio), 1 / rate)
        assert rate == 16000 and e["audio_filepath"].startswith("../audio/test_real_telephone/")
        assert spec[freqs > 4200].sum() < 1e-3 * spec[(freqs > 500) & (freqs < 3000)].sum()
    train = _read(tmp_path, "train_mix")  # never trained on: no id, voice or line of it
    assert not {e["id"] for e in tel} & {e["id"].split("_r")[0] for e in train}
    assert not {e["speaker"] for e in tel} & {e["speaker"] for e in train}
    assert not {e["text"] for e in tel} & {e["text"] for e in train}
