"""Recorded noise and room impulse responses from folders (MUSAN- and RIRS_NOISES-like trees):
listing, reproducible draws, excerpts, resampling, unreadable files, SNR, alignment, config."""

from __future__ import annotations

import logging
import math
import pickle

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.config import AugmentConfig
from asr.config.loading import load_config
from asr.data import effects as A
from asr.data.augment import Augmenter
from asr.data.audio_folder import AudioFolder

from test_augment import SR, gen, one_thread  # noqa: F401  (one_thread: an autouse fixture)


def tone(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * math.pi * freq * t)).astype(np.float32)


def snr_db(clean: torch.Tensor, mixed: torch.Tensor) -> float:
    noise = (mixed - clean).double().pow(2).sum().item()
    return 10 * math.log10(clean.double().pow(2).sum().item() / noise)


@pytest.fixture
def musan(tmp_path):
    """noise/free-sound/{long,short,bad}.wav at 16 kHz, music/x/stereo.flac at 8 kHz, a README."""
    root = tmp_path / "musan"
    noise, music = root / "noise" / "free-sound", root / "music" / "x"
    noise.mkdir(parents=True)
    music.mkdir(parents=True)
    rng = np.random.default_rng(0)
    sf.write(noise / "long.wav", (0.1 * rng.standard_normal(SR * 3 // 2)).astype(np.float32), SR)
    sf.write(noise / "short.wav", (0.2 * rng.standard_normal(SR // 10)).astype(np.float32), SR)
    (noise / "bad.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(40))
    stereo = np.stack([tone(1000, 2.0, 8000, 0.6), tone(1000, 2.0, 8000, 0.2)], axis=1)
    sf.write(music / "stereo.flac", stereo, 8000)
    (root / "README").write_text("not audio\n")
    return root


@pytest.fixture
def rirs(tmp_path):
    """A 2-channel RIR (channel 0 direct at sample 20, channel 1 a louder peak at 300) and a
    mono one with 100 samples of leading silence."""
    d = tmp_path / "rirs" / "real"
    d.mkdir(parents=True)
    rng = np.random.default_rng(1)
    n = SR // 4
    decay = np.exp(-np.arange(n) / (0.05 * SR))
    ch0 = np.zeros(n)
    ch0[20] = 0.8
    ch0[21:] += 0.05 * rng.standard_normal(n - 21) * decay[21:]
    ch1 = np.zeros(n)
    ch1[300] = 0.95
    sf.write(d / "room_2ch.wav", np.stack([ch0, ch1], axis=1).astype(np.float32), SR)
    mono = np.zeros(n)
    mono[100] = -0.9
    mono[101:] += 0.05 * rng.standard_normal(n - 101) * decay[101:]
    sf.write(d / "room_mono.wav", mono.astype(np.float32), SR)
    return tmp_path / "rirs"


def folder(*dirs, sr=SR, kind="noise") -> AudioFolder:
    return AudioFolder([str(d) for d in dirs], sr, kind)


# --- listing ----------------------------------------------------------------------------------

def test_listing_recursive_sorted_and_cheap_to_pickle(musan):
    f = folder(musan / "noise", musan / "music")
    names = [p.rsplit("/", 1)[-1] for p in f.paths]
    assert sorted(names) == ["bad.wav", "long.wav", "short.wav", "stereo.flac"]
    assert f.paths == sorted(f.paths)
    again = pickle.loads(pickle.dumps(f))
    assert again.paths == f.paths and len(pickle.dumps(f)) < 2000
    assert folder(musan / "music", musan / "noise", musan / "noise").paths == f.paths


def test_folder_without_audio_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty" / "sub"
    empty.mkdir(parents=True)
    (empty / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="noise folder .*empty.*no audio files"):
        folder(tmp_path / "empty")
    with pytest.raises(ValueError, match="no such folder"):
        folder(tmp_path / "missing")


# --- excerpts ---------------------------------------------------------------------------------

def test_draws_reproducible_per_seed(musan):
    f = folder(musan / "noise", musan / "music")
    a = [f.excerpt(4000, gen(s)) for s in range(6)]
    b = [pickle.loads(pickle.dumps(f)).excerpt(4000, gen(s)) for s in range(6)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(a[0], x) for x in a[1:])


def test_excerpt_length_exact_and_short_file_tiled(musan, tmp_path):
    f = folder(musan / "noise", musan / "music")
    for n in (1, 999, 16000, 40001):
        assert f.excerpt(n, gen(n)).shape == (n,)
    only_short = tmp_path / "short"
    only_short.mkdir()
    (only_short / "s.wav").write_bytes((musan / "noise" / "free-sound" / "short.wav").read_bytes())
    x = folder(only_short).excerpt(5000, gen(3))
    period = SR // 10
    assert x.shape == (5000,)
    assert torch.allclose(x[:5000 - period], x[period:], atol=1e-6)
    src = torch.from_numpy(sf.read(only_short / "s.wav", dtype="float32")[0])
    start = int(torch.nonzero(torch.isclose(src, x[0], atol=1e-7))[0])
    assert torch.allclose(x[:period - start], src[start:], atol=1e-6)


def test_resampled_to_training_rate_and_mixed_to_mono(musan):
    f = folder(musan / "music")
    x = f.excerpt(8000, gen(0))
    spec = torch.fft.rfft(x.double() * torch.hann_window(8000, dtype=torch.float64)).abs()
    assert abs(spec.argmax().item() * SR / 8000 - 1000) <= 2
    rms = x[200:-200].double().pow(2).mean().sqrt().item()  # mean of 0.6 and 0.2 sines: 0.4
    assert rms == pytest.approx(0.4 / math.sqrt(2), rel=0.02)
    assert folder(musan / "music", sr=8000).excerpt(100, gen(0)).shape == (100,)


def test_corrupt_file_skipped_counted_and_draws_unchanged(musan, tmp_path, caplog):
    fresh = folder(musan / "noise")
    seen = folder(musan / "noise")
    with caplog.at_level(logging.WARNING, logger="asr.data.audio_folder"):
        outs = [seen.excerpt(3000, gen(s)) for s in range(30)]
    bad = [p for p in seen.paths if p.endswith("bad.wav")]
    assert list(seen.skipped) == bad
    assert sum("bad.wav" in r.getMessage() for r in caplog.records) == 1
    assert all(o.abs().sum() > 0 for o in outs)
    # a worker that already knows the bad file draws the same excerpts as one that does not
    assert all(torch.equal(fresh.excerpt(3000, gen(s)), o) for s, o in zip(range(30), outs))
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.wav").write_bytes(b"garbage")
    f = folder(only_bad)
    assert torch.equal(f.excerpt(50, gen(0)), torch.zeros(50)) and len(f.skipped) == 1


def test_recorded_noise_at_requested_snr(musan):
    f = folder(musan / "noise", musan / "music")
    clean = torch.from_numpy(tone(300, 1.0, SR, 0.3))
    for seed, snr in ((0, 7.5), (1, 0.0), (2, 20.0)):
        noise = A.random_noise(SR, gen(seed), ["recorded"], recorded=f)
        assert noise.shape == (SR,)
        assert noise.pow(2).mean().sqrt().item() == pytest.approx(1.0, rel=1e-3)
        assert abs(snr_db(clean, A.add_noise(clean, noise, snr)) - snr) < 0.5


# --- room impulse responses -------------------------------------------------------------------

def test_rir_first_channel_trimmed_to_direct_path_unit_energy(rirs):
    f = folder(rirs, kind="rir")
    got = {}
    for s in range(20):
        h = f.rir(gen(s))
        got[round(h[0].item(), 4)] = h
    assert len(got) == 2
    for h in got.values():
        assert h.abs().argmax().item() == 0
        assert h.double().pow(2).sum().item() == pytest.approx(1.0, rel=1e-4)
        assert h.numel() < SR // 4 - 15
    mono = min(got.values(), key=lambda h: h.numel())
    assert mono.numel() == SR // 4 - 100 and mono[0] < 0
    two = max(got.values(), key=lambda h: h.numel())
    assert two.numel() == SR // 4 - 20
    assert two[280:].abs().max() < 0.5 * two[0]  # channel 1's peak at 300 is not in it


def test_real_rir_reverberation_keeps_length_and_alignment(rirs):
    f = folder(rirs, kind="rir")
    dry = torch.randn(SR, generator=gen(5))
    for s in range(4):
        h = f.rir(gen(s))
        wet = A.reverberate(dry, h)
        assert wet.shape == dry.shape
        lags = range(-400, 401)
        corr = [torch.dot(wet[max(0, k):SR + min(0, k)], dry[max(0, -k):SR - max(0, k)]).item()
                for k in lags]
        assert abs(list(lags)[int(np.argmax(np.abs(corr)))]) <= 1  # the mono one is negative


# --- config and Augmenter ---------------------------------------------------------------------

def test_config_refuses_recorded_without_noise_dirs_and_parses_lists():
    with pytest.raises(ValueError, match="noise_types has 'recorded' but augment.noise_dirs"):
        Augmenter(AugmentConfig(noise_types=["recorded"], noise_prob=0.5))
    Augmenter(AugmentConfig(noise_types=["recorded"]))  # noise off: nothing to refuse
    with pytest.raises(ValueError, match="rir_share"):
        AugmentConfig(rir_share=1.5)
    assert AugmentConfig().noise_kinds == ["white", "pink", "babble"]
    cfg = load_config(overrides=["augment.noise_dirs=[/data/musan/noise,/data/musan/music]",
                                 "augment.rir_dirs=[/data/RIRS_NOISES/simulated_rirs]"])
    a = cfg.augment
    assert a.noise_dirs == ["/data/musan/noise", "/data/musan/music"]
    assert a.rir_dirs == ["/data/RIRS_NOISES/simulated_rirs"]
    assert a.noise_kinds == ["white", "pink", "babble", "recorded"] and not a.wave_active
    assert AugmentConfig(noise_dirs=["/x"], noise_types=["white"]).noise_kinds == ["white"]


def test_augmenter_with_recorded_noise_and_real_rirs(musan, rirs):
    cfg = AugmentConfig(noise_prob=1.0, snr_min=10.0, snr_max=10.0, noise_types=["recorded"],
                        noise_dirs=[str(musan / "noise"), str(musan / "music")],
                        reverb_prob=1.0, rir_dirs=[str(rirs)])
    assert cfg.wave_active
    aug = Augmenter(cfg, SR)
    assert aug.noise_types == ["recorded"] and len(aug.rir_folder) == 2
    wav = torch.from_numpy(tone(440, 0.5, SR, 0.3))
    out = aug(wav, gen(0))
    assert out.shape == wav.shape and torch.isfinite(out).all()
    assert not torch.allclose(out, wav)
    assert torch.equal(out, pickle.loads(pickle.dumps(aug))(wav, gen(0)))
    assert not torch.equal(out, aug(wav, gen(1)))
    # the room first (reverb_prob and rir_share are 1: no draws before the RIR's), then noise
    # at 10 dB SNR over the reverberant signal
    wet = A.reverberate(wav, aug.rir(gen(0)))
    assert abs(snr_db(wet, out) - 10.0) < 0.5


def test_rir_share_zero_or_unused_folders_keep_synthetic(musan, rirs):
    cfg = AugmentConfig(reverb_prob=1.0, rir_dirs=[str(rirs)], rir_share=0.0)
    aug = Augmenter(cfg, SR)
    assert aug.rir_folder is None
    plain = Augmenter(AugmentConfig(reverb_prob=1.0), SR)
    wav = torch.from_numpy(tone(440, 0.25, SR, 0.3))
    assert torch.equal(aug(wav, gen(2)), plain(wav, gen(2)))
