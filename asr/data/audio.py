"""Audio input: soundfile reads (wav, flac, ogg, mp3), mono mix, torchaudio resampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from asr.utils import atomic_path

SAMPLE_RATE = 16000


class AudioError(Exception):
    """An audio file that cannot be used; the message names the file and the reason."""


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Read an audio file as a mono float32 tensor at sample_rate.

    Raises AudioError (naming the file) if it is missing, undecodable, empty or non-finite.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    return decode_audio(str(path), str(path), sample_rate)


def decode_audio(source, name: str, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """load_audio's decoding of a path or a file object (e.g. a shard member's bytes in
    io.BytesIO): mono float32 at sample_rate; AudioError naming `name` when it is
    undecodable, empty or non-finite."""
    try:
        data, rate = sf.read(source, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types for corrupt input
        raise AudioError(f"{name}: cannot decode audio ({e})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{name}: audio has no samples")
    if not np.isfinite(data).all():
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    wav = torch.from_numpy(data.mean(axis=1))
    if rate != sample_rate:
        wav = AF.resample(wav, rate, sample_rate)
    return wav.contiguous()


def write_wav(path: str | Path, wav, sample_rate: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM WAV atomically."""
    data = wav.numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
    with atomic_path(path, fsync=False) as tmp:  # hidden, and never matches *.wav
        sf.write(str(tmp), np.clip(data, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
