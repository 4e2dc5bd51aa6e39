"""Audio input: soundfile reads (wav, flac, ogg, mp3; FFmpeg when its MP3 decoder gives NaN),
mono mix, torchaudio resampling."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.transforms as AT

from asr.utils import atomic_path

SAMPLE_RATE = 16000


@functools.lru_cache(maxsize=32)
def _resampler(rate: int, target: int, dtype: torch.dtype, device: torch.device) -> AT.Resample:
    return AT.Resample(rate, target, dtype=dtype).to(device)


def resample(wav: torch.Tensor, rate: int, target: int) -> torch.Tensor:
    """torchaudio's windowed-sinc resampling (its defaults), with the filter kernel of each rate
    pair built once: AF.resample rebuilt it on every call, and for short files that cost more
    than the model (0.43 s of 2.9 s transcribing test_real's 372 clips at 11,025 Hz). Equal rates:
    the same tensor back."""
    if rate == target:
        return wav
    return _resampler(int(rate), int(target), wav.dtype, wav.device)(wav)


class AudioError(Exception):
    """An audio file that cannot be used; the message names the file and the reason."""


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, offset: float = 0.0,
               duration: float | None = None) -> torch.Tensor:
    """Read an audio file as a mono float32 tensor at sample_rate; with offset / duration
    (seconds) only that segment of it is read (a NeMo or lhotse segment of a long recording).

    Raises AudioError (naming the file) if it is missing, undecodable, empty or non-finite, or
    if the segment starts past its end.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    return decode_audio(str(path), str(path), sample_rate, offset, duration)


def entry_audio(entry: dict, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """The audio of a manifest entry: its whole file, or, when the entry has an "offset", the
    segment of "duration" seconds from there."""
    if "offset" in entry:
        return load_audio(entry["audio_filepath"], sample_rate, float(entry["offset"]),
                          entry.get("duration"))
    return load_audio(entry["audio_filepath"], sample_rate)


def _read(source, offset: float, duration: float | None):
    """(samples, rate) of the whole source, or of its segment (only those frames are read)."""
    if not offset and duration is None:
        return sf.read(source, dtype="float32", always_2d=True)
    with sf.SoundFile(source) as f:
        start = int(round(offset * f.samplerate))
        if f.frames > 0 and start >= f.frames:
            raise ValueError(f"the segment starts at {offset:.3f} s, after the end "
                             f"({f.frames / f.samplerate:.3f} s)")
        f.seek(start)
        frames = -1 if duration is None else max(1, int(round(duration * f.samplerate)))
        return f.read(frames, dtype="float32", always_2d=True), f.samplerate


def decode_audio(source, name: str, sample_rate: int = SAMPLE_RATE, offset: float = 0.0,
                 duration: float | None = None) -> torch.Tensor:
    """load_audio's decoding of a path or a file object (e.g. a shard member's bytes in
    io.BytesIO): mono float32 at sample_rate (the segment at offset, of duration seconds, when
    given); AudioError naming `name` when it is undecodable, empty or non-finite."""
    where = f" [{offset:.3f} s +{duration:.3f} s]" if offset or duration is not None else ""
    try:
        data, rate = _read(source, offset, duration)
    except Exception as e:  # soundfile raises several types for corrupt input
        raise AudioError(f"{name}{where}: cannot decode audio ({e})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{name}{where}: audio has no samples")
    data = data.mean(axis=1)
    if not np.isfinite(data).all():
        data = ffmpeg_retry(source, name, rate, offset, len(data))
    return resample(torch.from_numpy(data), rate, sample_rate).contiguous()


def ffmpeg_retry(source, name: str, rate: int, offset: float, frames: int) -> np.ndarray:
    """The same samples decoded by FFmpeg when libsndfile gave NaN or infinite ones: its MP3
    decoder (libmpg123) sometimes does on valid files, not the same frames on every run.
    AudioError naming the file when FFmpeg cannot do better."""
    if hasattr(source, "seek"):
        source.seek(0)
    try:
        samples, ff_rate = ffmpeg_decode(source, name)
    except AudioError:
        raise AudioError(f"{name}: audio contains NaN or infinite samples") from None
    if ff_rate != rate:
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    start = int(round(offset * rate))
    return samples[start:start + frames]


def ffmpeg_decode(source, name: str) -> tuple[np.ndarray, int]:
    """(mono float32 samples, sample rate) of a whole file or file object decoded by FFmpeg's
    libraries (PyAV), not libsndfile: libsndfile's MP3 decoder (libmpg123) sometimes turns frames
    of a valid MP3 into NaN samples, FFmpeg's does not. AudioError naming `name` on failure."""
    try:
        import av
    except ImportError:
        raise AudioError(f"{name}: decoding with FFmpeg needs PyAV: pip install av") from None
    try:
        with av.open(source) as container:
            if not container.streams.audio:
                raise AudioError(f"{name}: has no audio track")
            stream = container.streams.audio[0]
            rate = stream.rate or stream.codec_context.sample_rate
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            blocks = [out.to_ndarray().reshape(-1) for frame in container.decode(stream)
                      for out in resampler.resample(frame)]
            blocks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    except AudioError:
        raise
    except Exception as e:
        raise AudioError(f"{name}: cannot decode audio ({e})") from None
    samples = np.concatenate(blocks).astype(np.float32) if blocks else np.zeros(0, np.float32)
    if not np.isfinite(samples).all():
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    return samples, rate


def flac_bytes(wav: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> bytes:
    """A waveform as the bytes of a 16-bit FLAC file (lossless for 16-bit sources)."""
    import io
    buf = io.BytesIO()
    sf.write(buf, np.clip(wav.numpy(), -1.0, 1.0), sample_rate, subtype="PCM_16", format="FLAC")
    return buf.getvalue()


def write_wav(path: str | Path, wav, sample_rate: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM WAV atomically."""
    data = wav.numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
    with atomic_path(path, fsync=False) as tmp:  # hidden, and never matches *.wav
        sf.write(str(tmp), np.clip(data, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
