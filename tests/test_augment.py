"""Data augmentation: what each effect does to a known signal, reproducibility, all-off identity."""

from __future__ import annotations

import math

import pytest
import torch

from asr.data import augment, effects as A
from asr.config import AugmentConfig
from asr.data.augment import Augmenter

SR = 16000


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sine(freq: float, seconds: float = 1.0, amp: float = 0.5, sr: int = SR) -> torch.Tensor:
    t = torch.arange(int(seconds * sr), dtype=torch.float64) / sr
    return (amp * torch.sin(2 * math.pi * freq * t)).float()


def peak_hz(x: torch.Tensor, sr: int = SR) -> float:
    spec = torch.fft.rfft(x.double() * torch.hann_window(len(x), dtype=torch.float64)).abs()
    return spec.argmax().item() * sr / len(x)


def tone_db(x: torch.Tensor, freq: float, sr: int = SR) -> float:
    """Level of the component at freq (least-squares fit of a sine and cosine), in dB."""
    t = torch.arange(len(x), dtype=torch.float64) / sr
    c, s = torch.cos(2 * math.pi * freq * t), torch.sin(2 * math.pi * freq * t)
    a = 2 * (x.double() * c).mean()
    b = 2 * (x.double() * s).mean()
    return 10 * math.log10((a * a + b * b).item() + 1e-30)


def snr_db(clean: torch.Tensor, mixed: torch.Tensor) -> float:
    noise = (mixed - clean).double().pow(2).sum().item()
    return 10 * math.log10(clean.double().pow(2).sum().item() / noise)


def rms_db(x: torch.Tensor) -> float:
    return 10 * math.log10(x.double().pow(2).mean().item())


def band_db(x: torch.Tensor, lo: float, hi: float, sr: int = SR) -> float:
    p = torch.fft.rfft(x.double()).abs().pow(2)
    f = torch.fft.rfftfreq(len(x), 1 / sr)
    return 10 * math.log10(p[(f >= lo) & (f < hi)].mean().item())


# --- SpecAugment ------------------------------------------------------------------------------

def test_spec_augment_masks_requested_bands_and_leaves_rest():
    feats = torch.randn(200, 80, generator=gen(1))
    kw = dict(freq_masks=2, freq_width=27, time_masks=3, time_width_ratio=0.05)
    masked_any = 0
    for seed in range(5):
        freq, time = augment.spec_augment_masks(200, 80, gen(seed), **kw)
        assert len(freq) == 2 and len(time) == 3
        assert all(0 <= w <= 27 and 0 <= s and s + w <= 80 for s, w in freq)
        assert all(0 <= w <= 10 and 0 <= s and s + w <= 200 for s, w in time)
        out = augment.spec_augment(feats, gen(seed), mask_value=-1000.0, **kw)
        expect = torch.zeros(200, 80, dtype=torch.bool)
        for s, w in freq:
            expect[:, s:s + w] = True
        for s, w in time:
            expect[s:s + w, :] = True
        assert torch.equal(out == -1000.0, expect)
        assert torch.equal(out[~expect], feats[~expect])
        masked_any += int(expect.any())
    assert masked_any >= 4


def test_spec_augment_default_fill_is_band_mean():
    feats = torch.randn(100, 40, generator=gen(2)) + torch.arange(40.0)
    freq, time = augment.spec_augment_masks(100, 40, gen(3), 1, 10, 1, 0.2)
    out = augment.spec_augment(feats, gen(3), 1, 10, 1, 0.2)
    s, w = time[0]
    assert w > 0
    assert torch.allclose(out[s], feats.mean(0))
    assert torch.equal(feats, feats.clone())  # input not modified in place


def test_wave_augment_spec_augment_config():
    feats = torch.randn(120, 80, generator=gen(4))
    assert Augmenter(AugmentConfig()).spec_augment(feats, gen(0)) is feats
    aug = Augmenter(AugmentConfig(specaugment=True, time_masks=2, freq_masks=2))
    a, b = aug.spec_augment(feats, gen(5)), aug.spec_augment(feats, gen(5))
    assert torch.equal(a, b) and not torch.equal(a, feats)


# --- speed and pitch --------------------------------------------------------------------------

@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturb_changes_duration_and_frequency(factor):
    x = sine(1000.0)
    y = A.speed_perturb(x, factor)
    assert abs(len(y) - len(x) / factor) <= 0.01 * len(x) / factor
    assert abs(peak_hz(y) - 1000.0 * factor) <= 0.01 * 1000.0 * factor
    assert A.speed_perturb(x, 1.0) is x


@pytest.mark.parametrize("semitones", [2.0, -3.0])
def test_pitch_shift_keeps_duration_moves_frequency(semitones):
    x = sine(1000.0)
    y = A.pitch_shift(x, semitones)
    assert y.shape == x.shape
    expect = 1000.0 * 2 ** (semitones / 12)
    assert abs(peak_hz(y) - expect) <= 0.01 * expect
    assert rms_db(y[2000:-2000]) > rms_db(x) - 3  # not attenuated away


# --- noise ------------------------------------------------------------------------------------

def babble_sources():
    return [sine(f, seconds=0.7, amp=0.1 + 0.05 * i) * torch.hann_window(int(0.7 * SR))
            for i, f in enumerate((180.0, 250.0, 330.0, 410.0, 520.0))]


@pytest.mark.parametrize("kind", ["white", "pink", "babble"])
@pytest.mark.parametrize("target", [0.0, 7.5, 20.0])
def test_noise_snr(kind, target):
    x = sine(440.0, amp=0.3)
    g = gen(7)
    if kind == "white":
        noise = A.white_noise(len(x), g)
    elif kind == "pink":
        noise = A.pink_noise(len(x), g)
    else:
        noise = A.babble_noise(len(x), g, babble_sources())
    y = A.add_noise(x, noise, target)
    assert y.shape == x.shape
    assert abs(snr_db(x, y) - target) < 0.5


def test_noise_spectra():
    white, pink = A.white_noise(4 * SR, gen(8)), A.pink_noise(4 * SR, gen(8))
    assert abs(rms_db(white)) < 0.01 and abs(rms_db(pink)) < 0.01  # unit RMS
    # pink: -3 dB per octave -> 3 octaves apart is 9 dB; white is flat
    assert abs(band_db(pink, 125, 250) - band_db(pink, 1000, 2000) - 9.03) < 1.5
    assert abs(band_db(white, 125, 250) - band_db(white, 1000, 2000)) < 1.0


def test_babble_from_callable_and_wave_augment_snr():
    sources = babble_sources()
    calls = []

    def source(g):
        calls.append(1)
        return sources[A.randint(g, 0, len(sources) - 1)]
    noise = A.babble_noise(SR, gen(9), source, 4, 4)
    assert len(calls) == 4 and abs(rms_db(noise)) < 0.01
    cfg = AugmentConfig(noise_prob=1.0, snr_min=5.0, snr_max=15.0, noise_types=["babble"])
    x = sine(300.0, amp=0.2)
    y = Augmenter(cfg, babble_source=sources)(x, gen(10))
    assert 5.0 - 0.5 < snr_db(x, y) < 15.0 + 0.5
    # no babble source: babble dropped; nothing else left -> error
    with pytest.raises(ValueError):
        Augmenter(cfg)


# --- reverberation ----------------------------------------------------------------------------

def measured_rt60(y: torch.Tensor, sr: int = SR) -> float:
    """Schroeder backward integration, T20 line fit (-5 to -25 dB) extrapolated to 60 dB."""
    e = y.double().pow(2).flip(0).cumsum(0).flip(0)
    edc = 10 * torch.log10(e / e[0])
    sel = (edc <= -5) & (edc >= -25)
    t = torch.arange(len(y), dtype=torch.float64)[sel] / sr
    d = edc[sel]
    slope = ((t - t.mean()) * (d - d.mean())).sum() / (t - t.mean()).pow(2).sum()
    return (-60.0 / slope).item()


@pytest.mark.parametrize("rt60", [0.3, 0.6])
def test_reverb_decay_matches_rt60(rt60):
    impulse = torch.zeros(SR)
    impulse[0] = 1.0
    rir = A.synthetic_rir(rt60, SR, gen(11), drr_db=0.0)
    assert rir[0] == 1.0
    tail = rir[1:].double().pow(2).sum().item()
    assert abs(10 * math.log10(1.0 / tail)) < 0.01  # direct-to-reverberant ratio as asked
    y = A.reverberate(impulse, rir)
    assert y.shape == impulse.shape
    assert abs(measured_rt60(y) - rt60) < 0.3 * rt60


def test_reverb_keeps_length_and_level():
    x = sine(500.0, seconds=0.8) * torch.hann_window(int(0.8 * SR))
    y = A.reverberate(x, A.synthetic_rir(0.5, SR, gen(12), drr_db=3.0))
    assert y.shape == x.shape
    assert abs(rms_db(y) - rms_db(x)) < 0.01
    assert not torch.allclose(x, y)


# --- telephone, gain --------------------------------------------------------------------------

def test_telephone_band():
    x = sine(100.0, amp=0.25) + sine(1000.0, amp=0.25) + sine(5000.0, amp=0.25)
    x = x + sine(3900.0, amp=0.2)
    for mu in (True, False):
        y = A.telephone(x, SR, mu_law=mu)
        assert y.shape == x.shape
        assert abs(tone_db(y, 1000.0) - tone_db(x, 1000.0)) < 1.0
        for f in (100.0, 3900.0, 5000.0):
            assert tone_db(x, f) - tone_db(y, f) > 20.0
    # out-of-band energy overall (not just the tones' bins), with mu-law noise included
    y = A.telephone(x, SR)
    assert band_db(x, 4100, 8000) - band_db(y, 4100, 8000) > 20.0
    assert band_db(x, 0, 250) - band_db(y, 0, 250) > 20.0


def test_gain_changes_rms_by_drawn_db():
    x = sine(700.0, amp=0.1)
    assert abs(rms_db(A.gain(x, -6.0)) - rms_db(x) + 6.0) < 1e-3
    cfg = AugmentConfig(gain_min_db=-10.0, gain_max_db=10.0)
    y = Augmenter(cfg)(x, gen(13))
    drawn = A.uniform(gen(13), -10.0, 10.0)  # the only draw made with this config
    assert abs((rms_db(y) - rms_db(x)) - drawn) < 1e-3


# --- composition ------------------------------------------------------------------------------

def full_config() -> AugmentConfig:
    return AugmentConfig(specaugment=True, speed_factors=[0.9, 1.0, 1.1], pitch_prob=0.5,
                         noise_prob=1.0, reverb_prob=1.0, telephone_prob=0.5,
                         gain_min_db=-6.0, gain_max_db=6.0)


def test_all_off_returns_input_unchanged():
    x = sine(440.0)
    aug = Augmenter(AugmentConfig())
    g = gen(0)
    state = g.get_state()
    assert aug(x, g) is x
    assert torch.equal(g.get_state(), state)  # nothing drawn
    assert not AugmentConfig().wave_active and full_config().wave_active


def test_same_seed_same_output_different_seed_different():
    x = sine(440.0) + 0.1 * sine(1500.0)
    aug = Augmenter(full_config(), babble_source=babble_sources())
    a, b = aug(x, gen(21)), aug(x, gen(21))
    assert torch.equal(a, b)
    outs = [aug(x, gen(s)) for s in range(22, 25)]
    assert all(o.shape != a.shape or not torch.equal(o, a) for o in outs)
    assert all(torch.isfinite(o).all() for o in outs)


def test_short_and_empty_inputs():
    aug = Augmenter(full_config(), babble_source=babble_sources())
    for n in (0, 1, 100, 300):
        y = aug(torch.randn(n, generator=gen(n)), gen(40 + n))
        assert torch.isfinite(y).all() and (n == 0) == (y.numel() == 0)


def test_item_generator_depends_on_seed_epoch_index_only():
    draw = lambda g: torch.rand(4, generator=g)  # noqa: E731
    assert torch.equal(draw(A.item_generator(1, 2, 3)), draw(A.item_generator(1, 2, 3)))
    assert not torch.equal(draw(A.item_generator(1, 2, 3)), draw(A.item_generator(1, 3, 3)))
    assert not torch.equal(draw(A.item_generator(1, 2, 3)), draw(A.item_generator(1, 2, 4)))


def test_config_validation_and_string_factors():
    # command-line overrides give lists of strings: factors are converted
    aug = Augmenter(AugmentConfig(speed_factors=["0.9", "1.1"]))
    assert aug.speed_factors == [0.9, 1.1]
    with pytest.raises(ValueError):
        Augmenter(AugmentConfig(noise_prob=1.5))
    with pytest.raises(ValueError):
        Augmenter(AugmentConfig(noise_types=["brown"]))
    with pytest.raises(ValueError):
        Augmenter(AugmentConfig(snr_min=10.0, snr_max=0.0))


def test_pitch_shift_is_fast_enough():
    import time
    x = torch.randn(5 * SR, generator=gen(30))
    t0 = time.perf_counter()
    y = A.pitch_shift(x, 1.3)
    assert y.shape == x.shape
    assert time.perf_counter() - t0 < 1.0  # 5 s of audio, one thread
