"""Sequential reading of any audio a user has: soundfile's formats, then FFmpeg's (via PyAV).

``AudioReader(path)`` opens a file once and hands out mono float32 blocks in order, so an
hour-long recording costs what one block does. soundfile reads wav/flac/ogg/mp3; what it
cannot open (m4a/aac, opus in webm, the audio track of mp4/mkv video, ...) is decoded by
PyAV, which bundles FFmpeg's libraries.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from asr.data.audio import AudioError

# What AudioReader reads, by extension: libsndfile's formats (soundfile), then FFmpeg's (PyAV,
# `pip install av`: without it those files are named with that advice, never skipped unseen).
# One list, so a folder gives every file that can be read when named (asr transcribe DIR).
SOUNDFILE_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff",
                                ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64", ".sph", ".nist"})
FFMPEG_SUFFIXES = frozenset({".m4a", ".mp4", ".aac", ".webm", ".mkv", ".mka", ".mov", ".wv"})
AUDIO_SUFFIXES = SOUNDFILE_SUFFIXES | FFMPEG_SUFFIXES


class AudioReader:
    """Context manager: .sample_rate, .duration (s, None when unknown), .name, and
    read(n) -> mono float32 samples, fewer than n only at the end. Errors are AudioError
    naming the file (and the time, mid-file)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = str(path)
        if not self.path.is_file():
            raise AudioError(f"{path}: no such file" if not self.path.exists() else f"{path}: not a file")
        self._sf = self._av = None
        self._pos = 0
        try:
            self._sf = sf.SoundFile(str(self.path))
            self.sample_rate = self._sf.samplerate
            self.duration = self._sf.frames / self.sample_rate if self._sf.frames > 0 else None
        except Exception as sf_error:  # soundfile raises several types for what it cannot read
            self._open_av(sf_error)

    def _open_av(self, sf_error: Exception) -> None:
        try:
            import av
        except ImportError:
            raise AudioError(f"{self.path}: cannot decode audio ({sf_error}); for m4a, webm, mp4 "
                             "and other FFmpeg formats: pip install av") from None
        try:
            self._container = av.open(str(self.path))
        except Exception as e:
            raise AudioError(f"{self.path}: cannot decode audio ({e})") from None
        streams = self._container.streams.audio
        if not streams:
            self._container.close()
            raise AudioError(f"{self.path}: has no audio track")
        stream = streams[0]
        self.sample_rate = stream.rate or stream.codec_context.sample_rate
        self.duration = float(stream.duration * stream.time_base) if stream.duration else (
            self._container.duration / 1e6 if self._container.duration else None)
        # resample to packed float32 mono at the stream's rate: one format for every codec
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=self.sample_rate)
        self._frames = self._container.decode(stream)
        self._av = np.zeros(0, np.float32)

    def _av_more(self) -> bool:
        """Decode the next frame into the buffer; False at the end."""
        try:
            frame = next(self._frames)
        except StopIteration:
            flushed = self._resampler.resample(None)
            self._frames = iter(())
            if not flushed:
                return False
            self._av = np.concatenate([self._av] + [f.to_ndarray().reshape(-1) for f in flushed])
            return True
        except Exception as e:
            raise AudioError(f"{self.path}: cannot decode audio at {self._pos / self.sample_rate:.1f} s ({e})") from None
        for out in self._resampler.resample(frame):
            self._av = np.concatenate([self._av, out.to_ndarray().reshape(-1).astype(np.float32)])
        return True

    def read(self, n: int) -> np.ndarray:
        if self._sf is not None:
            try:
                block = self._sf.read(n, dtype="float32", always_2d=True)
            except Exception as e:
                raise AudioError(f"{self.path}: cannot decode audio at {self._pos / self.sample_rate:.1f} s ({e})") from None
            mono = block.mean(axis=1, dtype=np.float32)
        else:
            while len(self._av) < n and self._av_more():
                pass
            mono, self._av = self._av[:n], self._av[n:]
        if not np.isfinite(mono).all():
            raise AudioError(f"{self.path}: audio contains NaN or infinite samples")
        self._pos += len(mono)
        return mono

    def close(self) -> None:
        if self._sf is not None:
            self._sf.close()
        elif hasattr(self, "_container"):
            self._container.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


def read_all(path: str | Path) -> tuple[np.ndarray, int]:
    """(mono float32 samples, sample rate) of a whole file, any format AudioReader reads."""
    with AudioReader(path) as r:
        blocks = []
        while True:
            b = r.read(1 << 18)
            blocks.append(b)
            if len(b) < 1 << 18:
                break
        return np.concatenate(blocks), r.sample_rate


def audio_duration(path: str | Path) -> float | None:
    """Duration in seconds from the file's header, or None when unknown or unreadable."""
    try:
        with AudioReader(path) as r:
            return r.duration
    except AudioError:
        return None
