"""`asr validate MANIFEST`: every bad entry reported once with its line, file and reason."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from test_prepare_common import tone


def test_validate_reports_each_bad_line_once(tmp_path, capsys):
    from asr.cli import main
    audio = tmp_path / "audio"
    audio.mkdir()
    sr = 16000
    good = tone("ab cd")
    sf.write(audio / "good.wav", good, sr, subtype="PCM_16")
    sf.write(audio / "stereo48k.flac", np.stack([tone("ab", 48000)] * 2, 1), 48000)
    sf.write(audio / "short.wav", tone("a"), sr)
    sf.write(audio / "silent.wav", np.zeros(sr, np.float32), sr, subtype="PCM_16")
    nan = tone("ab")
    nan[5] = np.nan
    sf.write(audio / "nan.wav", nan, sr, subtype="FLOAT")
    (audio / "corrupt.flac").write_bytes(b"fLaC" + b"\x00" * 40)
    (audio / "adir.wav").mkdir()
    dur = round(len(good) / sr, 3)
    d48 = round(len(tone("ab", 48000)) / 48000, 3)

    def e(i, name, text="ab cd", duration=dur):
        return json.dumps({"id": i, "audio_filepath": f"audio/{name}", "duration": duration,
                           "text": text, "speaker": "s"})

    lines = [e("ok1", "good.wav"), e("ok2", "stereo48k.flac", "ab", d48),
             e("wrongdur", "good.wav", duration=dur + 2.0),
             e("missing", "missing.wav"), e("dir", "adir.wav"), e("corrupt", "corrupt.flac"),
             e("silent", "silent.wav", duration=1.0), e("nan", "nan.wav"),
             e("empty", "good.wav", text=""), e("oov", "good.wav", text="héllo wörld"),
             e("long", "short.wav", text="abc fed " * 10, duration=round(len(tone('a')) / sr, 3)),
             "{not json", json.dumps({"id": "nopath", "text": "ab"}), e("ok1", "good.wav")]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    assert main(["validate", str(manifest), "data.nj=2", "model.subsample=4"]) == 0
    out = capsys.readouterr().out
    expect = {3: "duration mismatch", 4: "missing file", 5: "not a file", 6: "cannot decode audio",
              7: "silent audio", 8: "NaN or infinite samples", 9: "empty transcript",
              10: "characters outside the vocabulary", 11: "label longer than the subsampled frames",
              12: "bad manifest line", 13: "bad manifest line", 14: "duplicate id"}
    for lineno, reason in expect.items():
        hits = [line for line in out.splitlines() if f"m.jsonl:{lineno}:" in line]
        assert len(hits) == 1 and reason in hits[0], (lineno, hits, out)
    assert "m.jsonl:1:" not in out and "m.jsonl:2:" not in out
    summary = [line for line in out.splitlines() if line.startswith("m.jsonl")][0].split()
    assert summary[1] == "2" and summary[3] == str(len(expect))
    assert main(["validate", str(manifest), "--strict"]) == 1

    bad_only = tmp_path / "bad.jsonl"
    bad_only.write_text("\n".join(lines[2:-1]) + "\n")
    assert main(["validate", str(bad_only), "--report", str(tmp_path / "r.tsv")]) == 1
    assert len((tmp_path / "r.tsv").read_text().splitlines()) == len(expect)  # header + 11


def test_prepared_corpus_validates_clean(tmp_path, capsys):
    """What asr prepare writes passes asr validate with the same settings."""
    from asr.cli import main
    from test_prepare_ljspeech import make_ljspeech
    source = make_ljspeech(tmp_path / "lj", n=6)
    args = ["data.corpus=ljspeech", f"data.source={source}", f"data.root={tmp_path}/d", "data.nj=1"]
    assert main(["prepare", *args]) == 0
    capsys.readouterr()
    assert main(["validate", "--strict", f"{tmp_path}/d/manifests/train.jsonl", *args]) == 0
    assert "rejected" not in capsys.readouterr().out.split("total")[1]


def test_checks_are_built_from_the_config():
    """Checks holds no settings of its own: the config's keys (CONFIG_KEYS), and normalize."""
    from asr.config import Config, apply
    from asr.data.checks import CONFIG_KEYS, Checks
    cfg = Config()
    apply(cfg, {"data": {"units": "phone", "phone_set": 61, "check_audio": False, "language": "de",
                         "min_letters_per_second": 1.5},
                "model": {"subsample": 2}, "features": {"hop_ms": 20, "sample_rate": 8000}})
    checks = Checks(cfg, normalize=False)
    assert {k: getattr(checks, k) for k in CONFIG_KEYS} == {
        "check_audio": False, "units": "phone", "phone_set": 61, "language": "de",
        "min_letters_per_second": 1.5, "subsample": 2, "hop_ms": 20.0, "sample_rate": 8000}
    assert not checks.normalize and not checks.english
    assert cfg.data.check_audio is False  # the config itself is left as it is
    assert Checks(cfg, check_audio=True).check_audio and not cfg.data.check_audio
    defaults = Checks()
    assert (defaults.units, defaults.subsample, defaults.hop_ms, defaults.check_audio) == \
        (Config().data.units, Config().model.subsample, Config().features.hop_ms, True)
    with pytest.raises(ValueError, match="data.units must be one of"):
        Checks(units="letters")
    with pytest.raises(TypeError, match="unknown setting"):
        Checks(subsampling=2)
