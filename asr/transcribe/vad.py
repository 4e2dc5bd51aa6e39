"""Voice-activity detection for long recordings: Silero VAD (the `silero-vad` wheel ships its
ONNX weights) finds the speech in each window, so silence, music and noise are not decoded
(a CTC model given music emits words anyway)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from asr.data.audio import resample

VAD_RATE = 16000  # Silero VAD runs at 16 kHz (or 8 kHz); windows are resampled to the model rate


@dataclass(frozen=True)
class VadSettings:
    """threshold: speech probability above which a 32 ms frame is speech.
    min_speech_s: shorter bursts are not speech. min_silence_s: a shorter gap does not end a
    region. pad_s: kept around each region, so word edges are not cut off."""

    threshold: float = 0.5
    min_speech_s: float = 0.25
    min_silence_s: float = 0.3
    pad_s: float = 0.2


class SpeechDetector:
    """speech_regions(audio at sample_rate) -> [(start_s, end_s)] of the speech in it."""

    def __init__(self, settings: VadSettings = VadSettings()):
        get_speech_timestamps, load_silero_vad = self._import()
        self.settings = settings
        self._timestamps = get_speech_timestamps
        with warnings.catch_warnings():  # its resource lookup's DeprecationWarning is not ours
            warnings.simplefilter("ignore", DeprecationWarning)
            self.model = load_silero_vad(onnx=True)  # 1 onnxruntime thread: it is small

    @staticmethod
    def _import():
        """silero_vad's functions; importing it sets torch's thread count to 1, undone here
        so the acoustic model keeps its threads."""
        threads = torch.get_num_threads()
        try:
            from silero_vad import get_speech_timestamps, load_silero_vad
        except ImportError as e:  # an optional dependency: say how to get it
            raise ImportError("voice-activity detection needs silero-vad: "
                              "pip install 'asr-ctc[vad]' (or pip install silero-vad)") from e
        finally:
            torch.set_num_threads(threads)
        return get_speech_timestamps, load_silero_vad

    def speech_regions(self, audio: torch.Tensor, sample_rate: int) -> list[tuple[float, float]]:
        audio = resample(audio, sample_rate, VAD_RATE)
        s = self.settings
        found = self._timestamps(audio.float(), self.model, threshold=s.threshold,
                                 sampling_rate=VAD_RATE, min_speech_duration_ms=int(s.min_speech_s * 1000),
                                 min_silence_duration_ms=int(s.min_silence_s * 1000),
                                 speech_pad_ms=int(s.pad_s * 1000), return_seconds=False)
        return [(r["start"] / VAD_RATE, r["end"] / VAD_RATE) for r in found]


def frame_ranges(regions: list[tuple[float, float]], frame_s: float, frames: int) -> list[tuple[int, int]]:
    """Speech regions (s) as non-empty [start, end) ranges of network output frames."""
    out = []
    for start, end in regions:
        a, b = max(0, int(start / frame_s)), min(frames, int(round(end / frame_s)) + 1)
        if out and a <= out[-1][1]:  # padding made neighbours touch: one range
            out[-1] = (out[-1][0], max(out[-1][1], b))
        elif b > a:
            out.append((a, b))
    return out
