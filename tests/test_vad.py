"""Voice-activity detection in transcription (silero-vad): only speech is decoded.

The tone model (conftest.tone_run) recognises tone "words", which Silero VAD rightly does not
call speech: a file of espeak-ng speech, tone words and music is transcribed with the tone words
without VAD and without them with VAD, and a window of music alone never reaches the network.
"""

import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from asr.transcribe.transcriber import Chunking, Transcriber
from asr.transcribe.vad import SpeechDetector, VadSettings, frame_ranges
from conftest import SR, need, tone_speech

pytest.importorskip("silero_vad")


def espeak(text: str, path) -> np.ndarray:
    need("espeak-ng")
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True)
    wav, rate = sf.read(path, dtype="float32")
    return AF.resample(torch.from_numpy(wav), rate, SR).numpy()


def music(seconds: float) -> np.ndarray:
    """A pulsing three-note chord: loud, tonal, not speech."""
    t = np.arange(int(seconds * SR)) / SR
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220, 277, 330))
    return (0.2 * chord * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), np.float32)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """(path, (start, end) of the tone words): speech, tones, music, speech."""
    tmp = tmp_path_factory.mktemp("vad")
    speech = espeak("hello there, this is a test of the voice activity detector", tmp / "s.wav")
    tones = tone_speech("ab cd fed", np.random.default_rng(3))
    parts = [silence(0.5), speech, silence(0.5), tones, music(3.0), speech]
    start = sum(len(p) for p in parts[:3]) / SR
    path = tmp / "mixed.wav"
    sf.write(path, np.concatenate(parts), SR, subtype="PCM_16")
    return path, (start, start + len(tones) / SR)


def test_detector_finds_speech_not_tones_or_music(mixed):
    path, (tone_start, tone_end) = mixed
    wav = torch.from_numpy(sf.read(path, dtype="float32")[0])
    regions = SpeechDetector().speech_regions(wav, SR)
    assert len(regions) >= 2
    assert regions[0][0] < 0.7 and regions[-1][1] > len(wav) / SR - 0.5  # both speech parts
    assert all(end <= tone_start + 0.3 or start >= tone_end + 3.0 - 0.3 for start, end in regions)
    slow = AF.resample(wav, SR, 8000)  # any rate: resampled to the detector's
    assert len(SpeechDetector().speech_regions(slow, 8000)) == len(regions)


def test_transcription_with_vad_drops_the_non_speech(tone_run, mixed):
    path, (tone_start, tone_end) = mixed
    plain = Transcriber(tone_run / "exp", "cpu", "greedy").transcribe(path)
    heard = [w for w in plain["words"] if tone_start <= w["start"] < tone_end]
    assert heard, "without VAD the tone model hears its tone words (test set-up)"
    with_vad = Transcriber(tone_run / "exp", "cpu", "greedy", vad=VadSettings()).transcribe(path)
    assert not [w for w in with_vad["words"] if tone_start <= w["start"] < tone_end + 3.0]
    assert with_vad["duration"] == plain["duration"]


def test_a_window_without_speech_skips_the_network(tone_run, tmp_path, monkeypatch):
    path = tmp_path / "music.wav"
    sf.write(path, np.concatenate([music(5.0), silence(2.0)]), SR, subtype="PCM_16")
    t = Transcriber(tone_run / "exp", "cpu", "greedy", chunking=Chunking(4.0, 1.0), vad=VadSettings())
    calls = []
    network = t.network
    monkeypatch.setattr(t, "network", lambda audios: calls.append(len(audios)) or network(audios))
    assert t.transcribe(path)["words"] == []
    assert [r for _, r in t.transcribe_many([path])][0]["words"] == []
    assert calls == []


def test_frame_ranges_merge_and_clip():
    assert frame_ranges([(0.0, 0.5), (0.52, 1.0), (2.0, 9.0)], 0.04, 100) == [(0, 26), (50, 100)]
    assert frame_ranges([], 0.04, 100) == []


def test_torch_threads_survive_the_import():
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        SpeechDetector()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(saved)
