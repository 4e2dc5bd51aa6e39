"""Shared fixtures: small corpora generated on the fly (sine 'words' and real TTS speech)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.config import Config, FeatureConfig, apply
from asr.data.store import extract_features

SR = 16000


def sine_audio(seconds: float = 1.0, freq: float = 440.0, rate: int = 16000, fmt: str = "OGG",
               subtype: str | None = "VORBIS", channels: int = 1) -> bytes:
    """A sine tone as the bytes of an audio file (OGG/Vorbis by default, MP3, WAV...): stand-in
    audio for the importers' fabricated packages."""
    wave = 0.3 * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)
    buf = io.BytesIO()
    sf.write(buf, np.stack([wave] * channels, 1).astype("float32"), rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def write_sine(path: Path, seconds: float = 1.0, freq: float = 440.0, **kw) -> Path:
    """sine_audio written to path (folders made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(sine_audio(seconds, freq, **kw))
    return path


def tone_utterance(text: str, rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    """A deterministic 'speech-like' signal: each character is a short tone of its own pitch,
    so a model can learn the mapping from sound to characters in a few hundred steps."""
    pieces = []
    for ch in text:
        n = int(0.06 * sr)
        t = np.arange(n) / sr
        freq = 200 + 60 * (ord(ch) % 32)
        tone = 0.5 * np.sin(2 * np.pi * freq * t) * np.hanning(n)
        pieces.append(tone if ch != " " else np.zeros(n // 2))
    sig = np.concatenate([np.zeros(1600), *pieces, np.zeros(1600)])
    return (sig + 0.005 * rng.standard_normal(len(sig))).astype(np.float32)


@pytest.fixture
def tone_corpus(tmp_path: Path) -> Path:
    """A 3-split manifest corpus of tone 'speech' with a small vocabulary of words."""
    rng = np.random.default_rng(0)
    words = ["ab", "cd", "ef", "abc", "fed"]
    root = tmp_path / "tones"
    for split, n in (("train", 48), ("dev", 8), ("test", 8)):
        (root / "audio" / split).mkdir(parents=True)
        lines = []
        for i in range(n):
            text = " ".join(rng.choice(words, size=rng.integers(1, 4)))
            wav = tone_utterance(text, rng)
            path = root / "audio" / split / f"{split}{i:03d}.wav"
            sf.write(path, wav, SR, subtype="PCM_16")
            lines.append({"id": f"{split}{i:03d}", "audio_filepath": f"../audio/{split}/{path.name}",
                          "duration": len(wav) / SR, "text": text, "speaker": "tone"})
        (root / "manifests").mkdir(exist_ok=True)
        with open(root / "manifests" / f"{split}.jsonl", "w") as f:
            f.writelines(json.dumps(l) + "\n" for l in lines)
    return root


@pytest.fixture
def tone_store(tone_corpus):
    for split in ("train", "dev", "test"):
        extract_features(tone_corpus / "manifests" / f"{split}.jsonl", tone_corpus / "features" / split,
                         FeatureConfig(), nj=1, progress=False)
    return tone_corpus


def small_config(root, exp, **train):
    """A tiny model and batches for the tone corpus; train.* overrides as keyword arguments."""
    cfg = Config()
    apply(cfg, {"data": {"root": str(root), "test_splits": ["test"]},
                "model": {"rnn_layers": 2, "rnn_hidden": 48, "conv_channels": 8, "subsample": 2},
                "train": {"exp_dir": str(exp), "batch_frames": 1500, "warmup_steps": 10, "lr": 3e-3,
                          "log_every": 5, "threads": 2, **train}})
    return cfg


def need(program: str) -> None:
    if shutil.which(program) is None:
        pytest.fail(f"{program} is not installed: run `make setup` (installs the Debian packages)")
