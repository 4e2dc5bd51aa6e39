"""The bad-input corpus of tests/test_prepare_folder.py run through every later stage directly
(not through data prep, which would filter it first): feature extraction, training, decoding and
transcription each report every bad item once, with its file and reason, and go on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.checkpoint import save_checkpoint
from asr.config import FeatureConfig
from asr.data.audio import AudioError, load_audio
from asr.data.store import FeatureStore
from asr.data.dataset import AsrDataset
from asr.decoding.decoders import decode_store
from asr.text.normalize import normalize_text
from asr.text.vocab import CharVocab
from asr.train import Trainer
from asr.transcribe.transcriber import transcribe_files
from conftest import small_config, write_sine
from asr.data.store import extract_features
from test_prepare_folder import make_bad, make_good

AUDIO_BAD = {"truncated.flac", "corrupt.wav", "zero.wav", "nosamples.wav", "nan.wav", "inf.wav",
             "dirfile.wav"}


def bad_manifest(tmp_path: Path) -> Path:
    """A manifest naming every audio file of the good and bad recordings (plus a missing one),
    with the transcript each has, so that stages meet the bad items unfiltered."""
    src = tmp_path / "recordings"
    good = make_good(src)
    make_bad(src)
    lines = []
    for path in sorted(src.rglob("*")):
        if path.suffix in (".wav", ".flac", ".ogg", ".mp3") and path.name != "untranscribed.wav":
            txt = path.with_suffix(".txt")
            raw = txt.read_bytes().decode("utf-8", "replace") if txt.is_file() else ""
            # normalised as data prep would, except the out-of-vocabulary one, kept as it is
            text = raw.strip().lower() if path.stem == "oov" else normalize_text(raw)
            lines.append({"id": f"{path.parent.name}-{path.stem}", "audio_filepath": str(path),
                          "text": text})
    lines.append({"id": "gone", "audio_filepath": str(src / "gone.wav"), "text": "ab"})
    manifest = tmp_path / "all.jsonl"
    manifest.write_text("".join(json.dumps(e) + "\n" for e in lines))
    assert len(good) == 12
    return manifest


def test_every_stage_reports_bad_items_once_and_processes_the_rest(tmp_path, tone_store, caplog, capsys):
    manifest = bad_manifest(tmp_path)
    store_dir = tone_store / "features" / "mixed"
    meta = extract_features(manifest, store_dir, FeatureConfig(), nj=2, chunk_utts=8, progress=False)
    # features: unreadable audio skipped, named once each, counted; readable audio kept
    skipped = {Path(s.split(":")[0]).name for s in meta["skipped_files"]}
    assert skipped == AUDIO_BAD | {"gone.wav"} and meta["skipped"] == len(AUDIO_BAD) + 1
    for name in AUDIO_BAD:
        assert sum(name in line for line in caplog.text.splitlines() if "skipped: " in line) == 1, name
    store = FeatureStore(store_dir)
    assert len(store) == 12 + 6  # good + readable bad: truncated.wav, silent, badutf8, empty, oov, toolong
    # training: transcript problems dropped with a count per reason
    ds = AsrDataset(store, CharVocab(), subsample=4, name="mixed")
    assert ds.dropped.get("empty transcript", 0) >= 1
    assert ds.dropped.get("characters outside the vocabulary", 0) >= 1
    assert ds.dropped.get("label longer than subsampled frames", 0) >= 1
    cfg = small_config(tone_store, tmp_path / "exp", epochs=2, max_steps=2)
    cfg.data.train_split = "mixed"
    trainer = Trainer(cfg)
    assert trainer.train()["step"] == 2
    # decoding: every stored utterance gets a hypothesis
    hyps = decode_store(trainer.model, trainer.vocab, store, torch.device("cpu"))
    assert [h["id"] for h in hyps] == [e["id"] for e in store.entries]
    # transcription: each unreadable file named once, the rest transcribed, exit status kept
    ckpt = tmp_path / "model.pt"
    save_checkpoint(trainer.state(), ckpt)
    # (a directory argument is a folder to transcribe, so dirfile.wav is not given here)
    files = [json.loads(l)["audio_filepath"] for l in manifest.read_text().splitlines()
             if not l.count("dirfile.wav")]
    capsys.readouterr()
    results, errors = transcribe_files(ckpt, files)
    assert {Path(p).name for p in errors} == AUDIO_BAD - {"dirfile.wav"} | {"gone.wav"}
    assert len(results) == len(files) - len(errors)


def test_mp3_decoded_to_nan_by_libsndfile_is_decoded_again_by_ffmpeg(tmp_path, monkeypatch):
    # libmpg123 (inside libsndfile) turns a varying few frames of some valid MP3s into NaN
    # samples; the reader then decodes the same file, or its segment, with FFmpeg.
    path = write_sine(tmp_path / "clip.mp3", 1.0, 300.0, rate=11025, fmt="MP3", subtype=None)
    clean = load_audio(path, 11025)
    real_read = sf.read

    def nan_read(*args, **kw):
        data, rate = real_read(*args, **kw)
        data[100:200] = np.nan
        return data, rate

    monkeypatch.setattr(sf, "read", nan_read)
    again = load_audio(path, 11025)
    assert torch.isfinite(again).all() and len(again) == len(clean)
    assert (again - clean).abs().max() < 0.05
    nan_wav = tmp_path / "nan.wav"  # FFmpeg reads the same NaN from a float WAV: still refused
    sf.write(str(nan_wav), np.full(8000, np.nan, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav: audio contains NaN"):
        load_audio(nan_wav)
