"""What runs in a worker process: the model, loaded once per process through asr.load, and
the jobs the server sends it. Results are plain dicts (they cross the process boundary)."""

from __future__ import annotations

import logging
import os
import threading

import numpy as np

from asr.data.audio import AudioError
from asr.serve.settings import ServeSettings

log = logging.getLogger(__name__)

_model = None  # this process's asr.Model (start())


class AudioTooLong(AudioError):
    """Audio longer than the server's max_audio_s."""


def load_model(settings: ServeSettings):
    """The served model, through the public API."""
    import asr
    return asr.load(settings.model, device=settings.device, decoder=settings.decoder)


def start(settings: ServeSettings, threads: int, ready=None) -> None:
    """Worker initialiser: `threads` torch threads (the workers share the cores), the model,
    then wait at the `ready` barrier until every worker has its model."""
    import torch
    global _model
    torch.set_num_threads(threads)
    _model = load_model(settings)
    log.info("worker %d: model loaded", os.getpid())
    if ready is not None:
        try:
            ready.wait(timeout=300)
        except threading.BrokenBarrierError:  # another worker failed to start: serve anyway
            log.warning("worker %d: not every worker started", os.getpid())


def ping() -> int:
    return os.getpid()


def check_duration(path: str, max_audio_s: float) -> float:
    """The audio's duration (s) from its header, or by reading it when the header has none;
    AudioError when it cannot be read, AudioTooLong past max_audio_s."""
    from asr.data.reader import AudioReader
    with AudioReader(path) as reader:
        duration, counted = reader.duration, reader.duration is None
        if counted:  # no length in the header (e.g. streamed WebM): count, up to the limit
            n, block = 0, reader.sample_rate
            while n <= max_audio_s * reader.sample_rate:
                got = len(reader.read(block))
                n += got
                if got < block:
                    break
            duration = n / reader.sample_rate
    if duration > max_audio_s:
        length = f"over {max_audio_s:g} s" if counted else f"{duration:.1f} s"
        raise AudioTooLong(f"{path}: audio is {length} long; this server takes at most {max_audio_s:g} s")
    return duration


def _as_dict(transcript) -> dict:
    return {"text": transcript.text, "duration": transcript.duration,
            "words": [{"word": w.word, "start": w.start, "end": w.end, "conf": w.conf}
                      for w in transcript.words]}


def transcribe_file(path: str, max_audio_s: float) -> dict:
    """{"text", "duration", "words"} of an audio file of any format asr reads."""
    check_duration(path, max_audio_s)
    return _as_dict(_model.transcribe(path))


def transcribe_samples(samples: np.ndarray, sample_rate: int) -> dict:
    """{"text", "duration", "words"} of mono float32 samples at sample_rate."""
    return _as_dict(_model.transcribe(samples, sample_rate=sample_rate))
