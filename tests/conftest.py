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


# ---------------------------------------------------------------- a tiny trained model

WORDS = ["ab", "cd", "ef", "abc", "fed"]
CHAR_S, SPACE_S, PAD_S = 0.06, 0.05, 0.1


def tone_speech(text: str, rng: np.random.Generator, rate: int = SR) -> np.ndarray:
    """Like conftest.tone_utterance (a tone per character), with longer pauses between words so
    that a model trained for seconds hears them: CHAR_S per character, SPACE_S between words,
    PAD_S of silence at both ends, at any sample rate."""
    pieces = [np.zeros(int(PAD_S * rate))]
    for k, word in enumerate(text.split()):
        if k:
            pieces.append(np.zeros(int(SPACE_S * rate)))
        for ch in word:
            t = np.arange(int(CHAR_S * rate)) / rate
            pieces.append(0.5 * np.sin(2 * np.pi * (200 + 60 * (ord(ch) % 32)) * t) * np.hanning(len(t)))
    sig = np.concatenate(pieces + [np.zeros(int(PAD_S * rate))])
    return (sig + noise(len(sig), rate, rng)).astype(np.float32)


def tone_phrases(texts: list[str], rng: np.random.Generator, rate: int = SR) -> np.ndarray:
    """tone_speech of each text, with 0.2-1.2 s of noise between them."""
    pieces = []
    for k, text in enumerate(texts):
        if k:
            pieces.append(noise(int(rng.uniform(0.2, 1.2) * rate), rate, rng))
        pieces.append(tone_speech(text, rng, rate))
    return np.concatenate(pieces).astype(np.float32)


def noise(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Faint noise band-limited to 4 kHz, so that it sounds the same at every sample rate."""
    import torch
    import torchaudio.functional as AF
    white = torch.from_numpy(0.005 * rng.standard_normal(n * 8000 // rate + 8))
    return AF.resample(white, 8000, rate).numpy()[:n]


def word_times(text: str, start: float) -> list[tuple[str, float, float]]:
    """True (word, start, end) of a tone utterance that begins at `start` seconds."""
    out, t = [], start + PAD_S
    for k, w in enumerate(text.split()):
        if k:
            t += SPACE_S
        out.append((w, t, t + CHAR_S * len(w)))
        t += CHAR_S * len(w)
    return out


def write_tone_splits(root: Path, counts=(("train", 48), ("dev", 8), ("test", 8)),
                      two_phrase_every: int = 3, seed: int = 0) -> None:
    """Tone corpus splits under root: wavs, manifests, feature stores, train_text.txt. Every
    two_phrase_every-th training clip (0: none) is two phrases with a pause of noise between
    them, as in long recordings: the model learns that a long pause is a word boundary."""
    rng = np.random.default_rng(seed)
    for split, n in counts:
        (root / "audio" / split).mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(n):
            two = split == "train" and two_phrase_every and i % two_phrase_every == 0
            texts = [" ".join(rng.choice(WORDS, size=rng.integers(1, 4))) for _ in range(2 if two else 1)]
            path = root / "audio" / split / f"{split}{i:03d}.wav"
            sf.write(path, tone_phrases(texts, rng), SR, subtype="PCM_16")
            lines.append({"id": f"{split}{i:03d}", "audio_filepath": str(path),
                          "duration": sf.info(path).duration, "text": " ".join(texts)})
        (root / "manifests").mkdir(exist_ok=True)
        (root / "manifests" / f"{split}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        extract_features(root / "manifests" / f"{split}.jsonl", root / "features" / split,
                         FeatureConfig(), nj=1, progress=False)
    (root / "manifests" / "train_text.txt").write_text(
        "".join(json.loads(x)["text"] + "\n" for x in (root / "manifests" / "train.jsonl").open()))


def tone_model_config(root: Path, log_every: int = 1000) -> Config:
    """The small BiLSTM of tone_run, trained into <root>/exp on the corpus at root."""
    cfg = Config()
    apply(cfg, {"data": {"root": str(root), "test_splits": ["test"]},
                "model": {"rnn_layers": 1, "rnn_hidden": 64, "conv_channels": 8, "subsample": 2,
                          "dropout": 0.0},
                "train": {"exp_dir": str(root / "exp"), "batch_frames": 400, "warmup_steps": 10,
                          "lr": 1e-2, "epochs": 16, "threads": 2, "log_every": log_every,
                          "checkpoint_every": 0}})
    return cfg


@pytest.fixture(scope="session")
def tone_run(tmp_path_factory):
    """A tone corpus (features, train text) and a small BiLSTM trained on it to CER ~0 (~15 s)."""
    from asr.train import Trainer
    root = tmp_path_factory.mktemp("tones")
    write_tone_splits(root)
    trainer = Trainer(tone_model_config(root))
    trainer.train()
    assert trainer.validate()["cer"] < 5, "the tone model did not learn (test set-up)"
    return root
