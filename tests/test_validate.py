"""`asr validate MANIFEST`: every bad entry reported once with its line, file and reason."""

from __future__ import annotations

import json

import numpy as np
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
