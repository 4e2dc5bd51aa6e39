"""Kaldi data dirs: import (plain and relative paths, piped commands, segments) -> features ->
training steps -> decode; export to a data dir and import it back."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from test_prepare_common import corpus_config, pipeline, read_jsonl, sentences, tone


def make_kaldi(base: Path) -> Path:
    """base/s5/data/{train,dev,test}: Kaldi runs in s5, so relative paths start there."""
    s5 = base / "s5"
    audio = base / "corpus"
    audio.mkdir(parents=True)
    (s5 / "wav").mkdir(parents=True)
    for split, n in (("train", 6), ("dev", 2), ("test", 3)):
        d = s5 / "data" / split
        d.mkdir(parents=True)
        wav, text, utt2spk = [], [], []
        for i, sent in enumerate(sentences(n, seed=len(split))):
            spk = f"spk{i % 2}"
            utt = f"{spk}-{split}{i:02d}"
            if i % 3 == 0:  # piped through sox from FLAC
                sf.write(audio / f"{utt}.flac", tone(sent, seed=i), 16000)
                wav.append(f"{utt} sox {audio}/{utt}.flac -t wav - |")
            elif i % 3 == 1:  # relative to s5, 8 kHz
                sf.write(s5 / "wav" / f"{utt}.wav", tone(sent, 8000, seed=i), 8000, subtype="PCM_16")
                wav.append(f"{utt} wav/{utt}.wav")
            else:  # absolute path
                sf.write(audio / f"{utt}.wav", tone(sent, seed=i), 16000, subtype="PCM_16")
                wav.append(f"{utt} {audio}/{utt}.wav")
            text.append(f"{utt} {sent.upper()}")
            utt2spk.append(f"{utt} {spk}")
        for name, lines in (("wav.scp", wav), ("text", text), ("utt2spk", utt2spk)):
            (d / name).write_text("\n".join(sorted(lines)) + "\n")
    # train also has one long recording cut by segments (its utterances replace the others)
    d = s5 / "data" / "train"
    parts = sentences(4, seed=9)
    pieces = [tone(p, seed=k) for k, p in enumerate(parts)]
    sf.write(audio / "rec1.flac", np.concatenate(pieces), 16000)
    bounds = np.cumsum([0] + [len(p) for p in pieces]) / 16000
    with open(d / "wav.scp", "a") as f:
        f.write(f"rec1 sox {audio}/rec1.flac -t wav - |\n")
    segs = [f"spk2-rec1-{k} rec1 {bounds[k]:.3f} {bounds[k + 1]:.3f}" if k < 3 else
            f"spk2-rec1-{k} rec1 {bounds[k]:.3f} -1" for k in range(4)]
    (d / "segments").write_text("\n".join(segs) + "\n")
    (d / "text").write_text("\n".join(f"spk2-rec1-{k} {p.upper()}" for k, p in enumerate(parts)) + "\n")
    (d / "utt2spk").write_text("\n".join(f"spk2-rec1-{k} spk2" for k in range(4)) + "\n")
    return s5 / "data"


def test_kaldi_import_train_decode_export_roundtrip(tmp_path):
    if shutil.which("sox") is None:
        pytest.fail("sox is not installed: run `make setup`")
    from data_prep.prepare import run_prepare
    from data_prep.kaldi import export
    source = make_kaldi(tmp_path / "kaldi")
    cfg = corpus_config(tmp_path, "kaldi", source)
    summary, _ = pipeline(cfg, {"train": 4, "dev": 2, "test": 3})
    root = Path(cfg.data.root)
    train = read_jsonl(root / "manifests" / "train.jsonl")
    assert [e["id"] for e in train] == [f"spk2-rec1-{k}" for k in range(4)]
    assert all(e["speaker"] == "spk2" and (root / "manifests" / e["audio_filepath"]).exists() for e in train)
    assert (root / "audio" / "train" / "rec1.wav").exists()  # the piped recording, decoded once
    test = read_jsonl(root / "manifests" / "test.jsonl")
    assert test[0]["text"] == test[0]["text"].lower()

    out = tmp_path / "export" / "test"
    assert export(root / "manifests" / "test.jsonl", out) == 3
    assert sorted(p.name for p in out.iterdir()) == ["spk2utt", "text", "utt2dur", "utt2spk", "wav.scp"]
    scp = (out / "wav.scp").read_text().splitlines()
    assert all(line.split()[0].startswith("spk") for line in scp)
    back = corpus_config(tmp_path / "back", "kaldi", out, dev_fraction=0, test_fraction=0)
    run_prepare(back, progress=False)
    again = read_jsonl(Path(back.data.root) / "manifests" / "train.jsonl")
    assert [(e["id"], e["text"], e["speaker"]) for e in again] == \
        [(e["id"], e["text"], e["speaker"]) for e in test]
    assert all(abs(a["duration"] - b["duration"]) < 0.01 for a, b in zip(again, test))


def test_kaldi_failing_pipe_is_reported_not_fatal(tmp_path):
    from data_prep.prepare import run_prepare
    d = tmp_path / "data" / "train"
    d.mkdir(parents=True)
    sf.write(tmp_path / "ok.wav", tone("ab cd"), 16000, subtype="PCM_16")
    (d / "wav.scp").write_text(f"a {tmp_path}/ok.wav\nb false |\nc cat {tmp_path}/missing.wav |\n")
    (d / "text").write_text("a AB CD\nb AB\nc CD\nd EF\n")
    cfg = corpus_config(tmp_path / "out", "kaldi", d, dev_fraction=0, test_fraction=0)
    summary = run_prepare(cfg, progress=False)
    assert summary.splits["train"][0] == 1
    kinds = sorted(r.kind for r in summary.rejects)
    assert kinds == ["cannot decode audio", "cannot decode audio", "missing file"], summary.lines()
