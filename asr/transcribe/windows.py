"""The overlapping windows a long recording is read in (see asr.transcribe.transcriber).

A file, or an in-memory signal (:class:`ArrayReader`), is read in windows of ``chunk_s``
seconds that overlap by ``overlap_s`` (:class:`Chunking`); only one window is ever in memory.
Each window is mixed to mono and resampled to the model rate (:func:`reader_windows`), and a
word is kept from the window whose *own* part (the window minus half the overlap at each inner
edge) holds its midpoint (:func:`keep_own_words`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr.data.audio import AudioError, resample
from asr.data.reader import AudioReader

# integer PCM as WAV stores it: dtype -> (zero, full scale) of float = (x - zero) / scale
PCM_SCALES = {np.dtype(np.int16): (0.0, 32768.0), np.dtype(np.int32): (0.0, 2147483648.0),
              np.dtype(np.uint8): (128.0, 128.0)}


@dataclass
class Chunking:
    """How a long file is cut. chunk_s: window length (s); overlap_s: overlap of neighbouring
    windows (s), half of it context on each side of a boundary. chunk_s must exceed overlap_s.
    min_pause_s: inside a window, a pause at least this long (frames the network calls blank)
    ends a segment; segments are decoded separately, as the model and the LM saw sentences in
    training (0 = decode the window whole)."""

    chunk_s: float = 30.0
    overlap_s: float = 4.0
    min_pause_s: float = 0.4

    def __post_init__(self):
        if self.chunk_s <= self.overlap_s or self.overlap_s < 0:
            raise ValueError(f"chunk_s ({self.chunk_s}) must exceed overlap_s ({self.overlap_s}) >= 0")


@dataclass
class Window:
    """One window of a stream: audio at the model rate, its start time, whether it is the last;
    next_start_s: the next window's start_s (None: start_s + chunk_s - overlap_s), so that
    neighbours agree exactly on where one's own part ends and the next one's begins."""

    audio: torch.Tensor
    start_s: float
    first: bool
    last: bool
    speech: list[tuple[float, float]] | None = None  # with VAD: speech regions (s, in the window)
    next_start_s: float | None = None


def float_samples(audio: np.ndarray, name: str) -> np.ndarray:
    """Samples as float32: floats as they are (full scale +-1), integer PCM scaled as WAV files
    are (int16, int32; uint8 centred on 128). AudioError for any other dtype, whose scale is
    unknown (int64), or that are not samples (complex, bool, object)."""
    if audio.dtype in PCM_SCALES:
        zero, scale = PCM_SCALES[audio.dtype]
        out = audio.astype(np.float32)  # one copy: an hour of int16 at 16 kHz is 230 MB here
        out -= zero
        out /= scale
        return out
    if audio.dtype.kind == "f":
        return audio.astype(np.float32, copy=False)
    raise AudioError(f"{name}: cannot use samples of dtype {audio.dtype}: give floats "
                     "(full scale +-1) or int16, int32 or uint8 PCM")


class ArrayReader:
    """An in-memory signal behind the same interface as asr.data.audio.AudioReader: a NumPy
    array or tensor of float samples (full scale +-1) or of int16, int32 or uint8 PCM (scaled
    as WAV does); any other dtype is refused (AudioError)."""

    def __init__(self, audio, sample_rate: int, name: str = "<array>"):
        if isinstance(audio, torch.Tensor):  # bfloat16 has no NumPy dtype: floats go as float32
            audio = (audio.float() if audio.is_floating_point() else audio).detach().cpu().numpy()
        audio = float_samples(np.asarray(audio), name)
        if audio.ndim == 2:  # (samples, channels) or (channels, samples): mix the shorter axis
            audio = audio.mean(axis=int(np.argmin(audio.shape)), dtype=np.float32)
        if audio.ndim != 1:
            raise AudioError(f"{name}: audio must be 1-D (samples) or 2-D (channels), got {audio.shape}")
        if not np.isfinite(audio).all():
            raise AudioError(f"{name}: audio contains NaN or infinite samples")
        self.audio, self.sample_rate, self.name, self.pos = audio, int(sample_rate), name, 0
        self.duration = len(audio) / self.sample_rate

    def read(self, n: int) -> np.ndarray:
        block = self.audio[self.pos:self.pos + n]
        self.pos += len(block)
        return block

    def __enter__(self):
        return self

    def __exit__(self, *_):
        return None


def reader_windows(reader, sample_rate: int, chunking: Chunking):
    """Yield the overlapping Windows of a reader (.sample_rate, .read(n) -> mono float32 samples,
    fewer than n only at the end), read sequentially: only one window is ever in memory.

    Each window is read with one sample more than it holds: without that sample the window
    ends the file and is marked last, whatever the file's length (one of exactly
    chunk_s + k * (chunk_s - overlap_s) would otherwise end in a window not marked last, and
    keep_own_words would drop the words of its final seconds)."""
    rate = reader.sample_rate
    win, step = int(round(chunking.chunk_s * rate)), int(round((chunking.chunk_s - chunking.overlap_s) * rate))
    buf, pos = reader.read(win + 1), 0
    if len(buf) == 0:
        raise AudioError(f"{reader.name}: audio has no samples")
    while True:
        last = len(buf) <= win
        yield Window(resample(torch.from_numpy(buf[:win]), rate, sample_rate), pos / rate, pos == 0, last,
                     next_start_s=None if last else (pos + step) / rate)
        if last:
            return
        buf, pos = np.concatenate([buf[step:], reader.read(step)]), pos + step


def stream_windows(path: str | Path, sample_rate: int, chunking: Chunking):
    """The Windows of an audio file in any format asr.data.audio reads. Raises AudioError naming
    the file if it is missing, unreadable or empty."""
    with AudioReader(path) as reader:
        yield from reader_windows(reader, sample_rate, chunking)


def keep_own_words(words: list[dict], window: Window, chunking: Chunking) -> list[dict]:
    """The words whose midpoint lies in this window's own part (see the module docstring)."""
    half = chunking.overlap_s / 2
    lo = -math.inf if window.first else window.start_s + half
    if window.last:
        hi = math.inf
    else:  # where the next window's own part begins, computed as that window computes it
        step_s = chunking.chunk_s - chunking.overlap_s
        hi = (window.next_start_s if window.next_start_s is not None else window.start_s + step_s) + half
    return [w for w in words if lo <= (w["start"] + w["end"]) / 2 < hi]
