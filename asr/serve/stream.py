"""Live recognition over the WebSocket (/v1/stream): raw PCM in, partial and final texts out.

Two kinds of session, one protocol (docs/serving.md):

* StreamingSession, for unidirectional models: asr.streaming's recogniser, fed as the audio
  arrives; partial texts as it grows, and at the end (the client's {"type": "end"}, or
  max_audio_s of audio) the final text, which equals offline greedy decoding of that audio.
* SegmentSession, for the others (a bidirectional RNN needs a segment's end before its first
  output): the audio is buffered and, every partial_every_s, the buffer is decoded offline;
  that text is the partial, and once pause_s of silence follows its last word the segment up to
  the middle of that pause is final (the words as decoded) and dropped from the buffer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Awaitable, Callable

import numpy as np

SAMPLE_FORMATS = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}


@dataclass(frozen=True)
class StreamFormat:
    """What the client sends: sample_rate (Hz) and format (s16le: 16-bit PCM, f32le: float32,
    both little-endian mono)."""

    sample_rate: int = 16000
    format: str = "s16le"

    @classmethod
    def parse(cls, values: dict, base: "StreamFormat | None" = None) -> "StreamFormat":
        """From query parameters or a config message; ValueError saying what is wrong."""
        base = base or cls()
        fmt = str(values.get("format", base.format))
        if fmt not in SAMPLE_FORMATS:
            raise ValueError(f"format {fmt!r}: send one of {', '.join(SAMPLE_FORMATS)}")
        try:
            rate = int(values.get("sample_rate", base.sample_rate))
        except (TypeError, ValueError):
            raise ValueError(f"sample_rate {values.get('sample_rate')!r}: give the rate in Hz") from None
        if not 4000 <= rate <= 192000:
            raise ValueError(f"sample_rate {rate}: give a rate between 4000 and 192000 Hz")
        return cls(rate, fmt)


class PcmDecoder:
    """Binary frames -> float32 samples; a frame may end inside a sample (the rest is kept)."""

    def __init__(self, fmt: str):
        self.dtype = SAMPLE_FORMATS[fmt]
        self.rest = b""

    def __call__(self, data: bytes) -> np.ndarray:
        data, width = self.rest + data, self.dtype.itemsize
        cut = len(data) - len(data) % width
        data, self.rest = data[:cut], data[cut:]
        samples = np.frombuffer(data, self.dtype).astype(np.float32)
        if self.dtype.kind == "i":
            samples /= 32768.0
        elif not np.isfinite(samples).all():
            raise ValueError("f32le audio contains NaN or infinite samples")
        return samples


def _final(words: list[dict], start: float, end: float) -> dict:
    return {"type": "final", "text": " ".join(w["word"] for w in words), "words": words,
            "start": round(start, 3), "end": round(end, 3)}


def _shift(words: list[dict], offset: float) -> list[dict]:
    return [{**w, "start": round(w["start"] + offset, 3), "end": round(w["end"] + offset, 3)} for w in words]


class StreamingSession:
    """A unidirectional model's StreamingRecognizer; run(fn, *args) runs its blocking steps
    off the event loop. Final word times count from the start of the stream."""

    mode = "streaming"

    def __init__(self, recognizer, run: Callable[..., Awaitable], max_audio_s: float):
        self.rec, self.run = recognizer, run
        self.max_samples = int(max_audio_s * recognizer.sample_rate)
        self.samples, self.offset_s, self.text = 0, 0.0, ""

    async def accept(self, samples: np.ndarray) -> list[dict]:
        out = []
        if self.samples + len(samples) > self.max_samples:  # an utterance is at most max_audio_s
            out += await self.finish()
        partial = await self.run(self.rec.accept, samples)
        self.samples += len(samples)
        if partial["text"] != self.text:
            self.text = partial["text"]
            out.append({"type": "partial", "text": self.text})
        return out

    async def finish(self) -> list[dict]:
        result = await self.run(self.rec.finish)
        start, self.offset_s = self.offset_s, self.offset_s + self.samples / self.rec.sample_rate
        self.samples, self.text = 0, ""
        return [_final(_shift(result["words"], start), start, self.offset_s)] if result["words"] else []


class SegmentSession:
    """Pause-delimited segments decoded offline. decode(samples, rate, final) -> the result
    dict, or None when the server is too busy for a partial (final=False) decode."""

    mode = "segments"

    def __init__(self, decode: Callable[..., Awaitable], sample_rate: int, pause_s: float = 0.6,
                 max_segment_s: float = 30.0, partial_every_s: float = 0.5):
        self.decode, self.rate = decode, sample_rate
        self.pause_s, self.max_segment_s = pause_s, max_segment_s
        self.every = int(partial_every_s * sample_rate)
        self.buffer = np.zeros(0, np.float32)
        self.new = 0  # samples since the last decode
        self.offset_s, self.text = 0.0, ""

    async def accept(self, samples: np.ndarray) -> list[dict]:
        self.buffer = np.concatenate([self.buffer, samples])
        self.new += len(samples)
        if self.new < self.every:
            return []
        self.new = 0
        return await self._decode(end=False)

    async def finish(self) -> list[dict]:
        return await self._decode(end=True)

    async def _decode(self, end: bool) -> list[dict]:
        seconds = len(self.buffer) / self.rate
        result = await self.decode(self.buffer, self.rate, end) if seconds >= 0.05 else \
            {"words": [], "text": ""}  # shorter than a feature window: nothing to hear
        if result is None:
            return []
        words = result["words"]
        if end or seconds >= self.max_segment_s:
            return self._cut(words, seconds)
        if words and seconds - words[-1]["end"] >= self.pause_s:
            return self._cut(words, words[-1]["end"] + self.pause_s / 2)
        if not words and seconds >= 2 * self.pause_s:  # silence: keep only its end
            self._drop(seconds - self.pause_s)
        if result["text"] != self.text:
            self.text = result["text"]
            return [{"type": "partial", "text": self.text}]
        return []

    def _cut(self, words: list[dict], cut_s: float) -> list[dict]:
        start = self.offset_s
        self._drop(cut_s)
        self.text = ""
        return [_final(_shift(words, start), start, self.offset_s)] if words else []

    def _drop(self, seconds: float) -> None:
        n = min(len(self.buffer), int(round(seconds * self.rate)))
        self.buffer = self.buffer[n:]
        self.offset_s += n / self.rate


async def run_in(executor, fn, *args):
    """fn(*args) in a thread of executor, awaited."""
    return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)
