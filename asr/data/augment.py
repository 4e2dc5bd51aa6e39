"""On-the-fly data augmentation for speech: waveform effects and SpecAugment.

Every random choice is drawn from a ``torch.Generator`` passed in by the caller (never the
global RNG), so an utterance augmented with a generator seeded the same way comes out the same,
whatever the DataLoader worker or the order it is read in (see :func:`item_generator`).

Waveforms are float tensors (..., samples) at ``sample_rate`` (1-D for :class:`WaveAugment`);
features are (..., frames, dim) as made by :class:`asr.data.features.FeatureExtractor`.

Pieces, each usable on its own:

* :func:`spec_augment` (:class:`SpecAugment`) - frequency and time masking of features.
* :func:`speed_perturb` - Kaldi/ESPnet speed perturbation (duration and pitch change together).
* :func:`pitch_shift` - pitch change keeping the duration (phase vocoder + resampling).
* :func:`white_noise`, :func:`pink_noise`, :func:`babble_noise`, :func:`add_noise` - additive
  noise mixed at a target SNR.
* :func:`synthetic_rir`, :func:`reverberate` - reverberation with a synthetic room response.
* :func:`telephone` - 300-3400 Hz band, 8 kHz sampling and mu-law companding.
* :func:`gain` - level change in dB.

:class:`WaveAugment` chains them as set by an :class:`AugmentConfig` (everything off by default).
"""

from __future__ import annotations

import logging
import math
from fractions import Fraction
from typing import Callable, Sequence, Union

import torch
import torchaudio.functional as AF

from asr.config import AugmentConfig  # noqa: F401  (the config section lives with the others)

log = logging.getLogger(__name__)

NOISE_TYPES = ("white", "pink", "babble")

# A babble source: waveforms to draw talkers from, or a callable returning one utterance per call.
BabbleSource = Union[Sequence[torch.Tensor], Callable[[torch.Generator], torch.Tensor]]


# ---------------------------------------------------------------------------------------------
# random draws (all from the caller's generator)

def uniform(generator: torch.Generator, low: float, high: float) -> float:
    """A float drawn uniformly from [low, high) with generator (one draw)."""
    return low + (high - low) * torch.rand((), generator=generator).item()


def randint(generator: torch.Generator, low: int, high: int) -> int:
    """An int drawn uniformly from low..high inclusive with generator (one draw)."""
    return int(torch.randint(low, high + 1, (1,), generator=generator).item())


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A CPU generator for one utterance in one epoch.

    seed: the run's seed; epoch: the epoch number (a new draw every epoch); index: the
    utterance's index in the dataset. The result depends on these only, not on the DataLoader
    worker or the order utterances are read in.
    """
    mixed = ((seed * 1_000_003 + epoch) * 1_000_003 + index) % (1 << 63)
    return torch.Generator().manual_seed(mixed)


def _fit_length(wav: torch.Tensor, n: int) -> torch.Tensor:
    """Trim or zero-pad the last dimension to n samples."""
    if wav.shape[-1] >= n:
        return wav[..., :n]
    return torch.nn.functional.pad(wav, (0, n - wav.shape[-1]))


def _power(x: torch.Tensor) -> torch.Tensor:
    return x.double().pow(2).mean()


# ---------------------------------------------------------------------------------------------
# SpecAugment

def spec_augment_masks(frames: int, dim: int, generator: torch.Generator, freq_masks: int = 2,
                       freq_width: int = 27, time_masks: int = 2, time_width_ratio: float = 0.05
                       ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The masks SpecAugment draws, as ([(first bin, width)], [(first frame, width)]).

    frames / dim: size of the feature matrix. generator: source of the draws.
    freq_masks: number of frequency masks; each width is uniform in 0..min(freq_width, dim) and
        its first bin uniform over the positions where it fits.
    time_masks: number of time masks; each width is uniform in 0..int(time_width_ratio * frames)
        (adaptive to the utterance length, as in Park et al. 2020) and placed likewise.
    Masks may overlap; every mask is drawn (widths 0 included), so the draws are a fixed sequence.
    """
    def draw(n: int, widest: int, size: int) -> list[tuple[int, int]]:
        out = []
        widest = max(0, min(widest, size))
        for _ in range(n):
            w = randint(generator, 0, widest)
            out.append((randint(generator, 0, size - w), w))
        return out

    freq = draw(freq_masks, freq_width, dim)
    time = draw(time_masks, int(time_width_ratio * frames), frames)
    return freq, time


def spec_augment(feats: torch.Tensor, generator: torch.Generator, freq_masks: int = 2,
                 freq_width: int = 27, time_masks: int = 2, time_width_ratio: float = 0.05,
                 mask_value: float | torch.Tensor | None = None) -> torch.Tensor:
    """SpecAugment (Park et al. 2019) without time warping: a masked copy of feats.

    feats: (..., frames, dim) features (log-mel before CMVN, as the dataset yields them).
    generator: source of the draws (see :func:`spec_augment_masks` for the other parameters).
    mask_value: what masked cells get: a float, a (dim,) tensor (e.g. the CMVN mean, which the
        model normalises to 0 as in the paper), or None: each bin's mean over this utterance.
    torchaudio's TimeMasking/FrequencyMasking draw from the global RNG, hence masks drawn here.
    """
    frames, dim = feats.shape[-2], feats.shape[-1]
    freq, time = spec_augment_masks(frames, dim, generator, freq_masks, freq_width,
                                    time_masks, time_width_ratio)
    if mask_value is None:
        fill = feats.mean(dim=-2, keepdim=True) if frames else torch.zeros_like(feats[..., :1, :])
    else:
        fill = torch.as_tensor(mask_value, dtype=feats.dtype, device=feats.device)
        fill = fill.expand(dim).reshape(1, dim) if fill.dim() <= 1 else fill
    fill = fill.expand(*feats.shape[:-2], 1, dim)
    out = feats.clone()
    for start, w in freq:
        if w:
            out[..., :, start:start + w] = fill[..., :, start:start + w]
    for start, w in time:
        if w:
            out[..., start:start + w, :] = fill
    return out


class SpecAugment(torch.nn.Module):
    """:func:`spec_augment` with its settings fixed: ``SpecAugment(...)(feats, generator)``.

    Parameters as for :func:`spec_augment`.
    """

    def __init__(self, freq_masks: int = 2, freq_width: int = 27, time_masks: int = 2,
                 time_width_ratio: float = 0.05, mask_value: float | None = None):
        super().__init__()
        self.freq_masks, self.freq_width = int(freq_masks), int(freq_width)
        self.time_masks, self.time_width_ratio = int(time_masks), float(time_width_ratio)
        self.mask_value = mask_value

    def forward(self, feats: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return spec_augment(feats, generator, self.freq_masks, self.freq_width, self.time_masks,
                            self.time_width_ratio, self.mask_value)


# ---------------------------------------------------------------------------------------------
# speed and pitch

def _ratio(factor: float, max_denominator: int = 128) -> Fraction:
    """factor as a small fraction, so resampling uses a short kernel (0.9 -> 9/10)."""
    if factor <= 0:
        raise ValueError(f"factor must be positive, not {factor}")
    return Fraction(factor).limit_denominator(max_denominator)


def speed_perturb(wav: torch.Tensor, factor: float) -> torch.Tensor:
    """Speed perturbation (Ko et al. 2015; Kaldi/ESPnet): play the audio factor times faster.

    wav: (..., samples). factor: speed, e.g. 0.9 / 1.0 / 1.1; the output has about
    samples / factor samples and every frequency is multiplied by factor (pitch changes too).
    The factor is rounded to a fraction with a denominator of at most 128 (exact for 0.9, 1.1;
    within 0.4% otherwise), so the resampling kernel stays short.
    Resampling with torchaudio's windowed-sinc filter (anti-aliased).
    """
    r = _ratio(factor)
    if r == 1:
        return wav
    return AF.resample(wav, r.numerator, r.denominator)


def pitch_shift(wav: torch.Tensor, semitones: float, n_fft: int = 512,
                hop_length: int | None = None) -> torch.Tensor:
    """Shift the pitch by semitones keeping the duration (same number of samples).

    wav: (..., samples). semitones: shift (12 = one octave up, negative = down); the frequency
    ratio 2**(semitones/12) is rounded to a fraction with a denominator of at most 128 (within
    0.4%, about 7 cents, of the exact ratio).
    n_fft / hop_length: STFT of the phase vocoder (hop defaults to n_fft // 4).
    The signal is time-stretched by the ratio with a phase vocoder, then resampled back to the
    original length (what torchaudio's pitch_shift does, but with a short resampling kernel:
    its sample-rate ratios are often coprime, which makes it very slow).
    """
    if semitones == 0:
        return wav
    r = _ratio(2.0 ** (semitones / 12.0))
    if r == 1:
        return wav
    hop = hop_length or n_fft // 4
    shape, n = wav.shape, wav.shape[-1]
    x = wav.reshape(-1, n)
    window = torch.hann_window(n_fft, device=wav.device, dtype=wav.dtype)
    spec = torch.stft(x, n_fft, hop, window=window, center=True, pad_mode="constant",
                      return_complex=True)
    advance = torch.linspace(0, math.pi * hop, spec.shape[-2], device=wav.device,
                             dtype=wav.dtype)[..., None]
    stretched = AF.phase_vocoder(spec, float(1 / r), advance)  # duration x ratio, same pitch
    y = torch.istft(stretched, n_fft, hop, window=window,
                    length=int(round(n * r.numerator / r.denominator)))
    y = AF.resample(y, r.numerator, r.denominator)  # back to n samples, frequencies x ratio
    return _fit_length(y, n).reshape(shape)


# ---------------------------------------------------------------------------------------------
# additive noise

def white_noise(n: int, generator: torch.Generator) -> torch.Tensor:
    """n samples of Gaussian white noise with unit RMS. generator: source of the noise."""
    x = torch.randn(n, generator=generator)
    return x / x.pow(2).mean().sqrt().clamp_min(1e-12)


def pink_noise(n: int, generator: torch.Generator) -> torch.Tensor:
    """n samples of pink (1/f power, -3 dB per octave) noise with unit RMS.

    White Gaussian noise shaped in the frequency domain: amplitudes divided by sqrt(f), the DC
    bin zeroed. generator: source of the noise.
    """
    spec = torch.fft.rfft(torch.randn(n, generator=generator))
    f = torch.arange(spec.numel(), dtype=torch.float32)
    spec = spec * torch.where(f > 0, f.clamp_min(1).rsqrt(), torch.zeros_like(f))
    x = torch.fft.irfft(spec, n)
    return x / x.pow(2).mean().sqrt().clamp_min(1e-12)


def _draw_source(sources: BabbleSource, generator: torch.Generator) -> torch.Tensor:
    if callable(sources):
        return torch.as_tensor(sources(generator)).float().reshape(-1)
    if len(sources) == 0:
        raise ValueError("babble noise needs at least one source utterance")
    return torch.as_tensor(sources[randint(generator, 0, len(sources) - 1)]).float().reshape(-1)


def babble_noise(n: int, generator: torch.Generator, sources: BabbleSource,
                 talkers_min: int = 3, talkers_max: int = 7) -> torch.Tensor:
    """n samples of babble (several people talking at once) with unit RMS.

    generator: source of the draws. sources: other utterances at the same sample rate, either a
    sequence of waveforms (picked uniformly, with repetition) or a callable taking the generator
    and returning one waveform (e.g. a random training utterance; see :class:`StoreBabble`).
    talkers_min / talkers_max: number of talkers, drawn uniformly. Each talker is cut at a random
    offset (looped when shorter than n), set to unit RMS, and the talkers are summed.
    """
    k = randint(generator, talkers_min, max(talkers_min, talkers_max))
    total = torch.zeros(n)
    for _ in range(k):
        src = _draw_source(sources, generator)
        if src.numel() == 0:
            continue
        if src.numel() < n:
            src = src.repeat(n // src.numel() + 1)
        start = randint(generator, 0, src.numel() - n)
        piece = src[start:start + n]
        rms = piece.pow(2).mean().sqrt()
        if rms > 0:
            total += piece / rms
    rms = total.pow(2).mean().sqrt()
    return total / rms if rms > 0 else total


def random_noise(n: int, generator: torch.Generator, kinds: Sequence[str],
                 babble: BabbleSource | None = None, talkers_min: int = 3,
                 talkers_max: int = 7) -> torch.Tensor:
    """n samples of unit-RMS noise of a type drawn uniformly from kinds (white, pink, babble;
    babble needs its source, see :func:`babble_noise`). generator: source of every draw."""
    kind = kinds[randint(generator, 0, len(kinds) - 1)]
    if kind == "white":
        return white_noise(n, generator)
    if kind == "pink":
        return pink_noise(n, generator)
    return babble_noise(n, generator, babble, talkers_min, talkers_max)


def add_noise(wav: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    """wav + noise scaled so that the signal-to-noise ratio over the whole signal is snr_db.

    wav: (samples,) signal. noise: (samples,) noise of the same length (any level).
    snr_db: 10*log10(signal power / scaled noise power). A silent wav or noise comes back as is.
    """
    ps, pn = _power(wav), _power(noise)
    if ps == 0 or pn == 0:
        return wav
    scale = torch.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0))).to(wav.dtype)
    return wav + scale * noise.to(device=wav.device, dtype=wav.dtype)


# ---------------------------------------------------------------------------------------------
# reverberation

def synthetic_rir(rt60: float, sample_rate: int, generator: torch.Generator, drr_db: float = 0.0,
                  length_s: float | None = None) -> torch.Tensor:
    """A synthetic room impulse response: a direct path plus exponentially decaying noise.

    rt60: reverberation time in seconds (the tail's energy falls 60 dB in rt60).
    sample_rate: of the response. generator: source of the noise tail.
    drr_db: direct-to-reverberant ratio: energy of the direct path (1.0 at sample 0) over the
        tail's energy, in dB (higher = drier, nearer the microphone).
    length_s: length of the response in seconds (default rt60, where the tail is 60 dB down).
    """
    if rt60 <= 0:
        raise ValueError(f"rt60 must be positive, not {rt60}")
    n = max(2, int(round((length_s or rt60) * sample_rate)))
    t = torch.arange(n, dtype=torch.float64) / sample_rate
    envelope = torch.exp(-3 * math.log(10) * t / rt60)  # amplitude: 60 dB energy decay at rt60
    tail = torch.randn(n, generator=generator, dtype=torch.float64) * envelope
    tail[0] = 0.0
    tail *= math.sqrt(10.0 ** (-drr_db / 10.0) / tail.pow(2).sum().item())
    tail[0] = 1.0
    return tail.float()


def reverberate(wav: torch.Tensor, rir: torch.Tensor) -> torch.Tensor:
    """wav convolved with the impulse response rir (FFT convolution), same length and RMS.

    wav: (..., samples). rir: (taps,) impulse response, direct path first (so no delay is added;
    the tail past the end of wav is cut). The output is scaled to wav's RMS level.
    """
    y = AF.fftconvolve(wav, rir.to(device=wav.device, dtype=wav.dtype))[..., :wav.shape[-1]]
    py = _power(y)
    if py == 0:
        return y
    return y * torch.sqrt(_power(wav) / py).to(wav.dtype)


# ---------------------------------------------------------------------------------------------
# telephone channel, gain

def band_pass(wav: torch.Tensor, sample_rate: int, low_hz: float, high_hz: float,
              transition_hz: float = 100.0) -> torch.Tensor:
    """Zero-phase FFT band-pass: gain 1 in [low_hz, high_hz], 0 below low_hz - transition_hz and
    above high_hz + transition_hz, raised-cosine edges between.

    wav: (..., samples). sample_rate: of wav. low_hz / high_hz: pass band edges.
    transition_hz: width of each edge (a brick wall would ring).
    """
    n = wav.shape[-1]
    spec = torch.fft.rfft(wav)
    f = torch.fft.rfftfreq(n, 1.0 / sample_rate).to(wav.device)
    tw = max(transition_hz, 1e-6)
    rise = ((f - (low_hz - tw)) / tw).clamp(0, 1)
    fall = (((high_hz + tw) - f) / tw).clamp(0, 1)
    mask = (0.5 - 0.5 * torch.cos(math.pi * rise)) * (0.5 - 0.5 * torch.cos(math.pi * fall))
    return torch.fft.irfft(spec * mask.to(spec.real.dtype), n)


def telephone(wav: torch.Tensor, sample_rate: int, low_hz: float = 300.0,
              high_hz: float = 3400.0, mu_law: bool = True, codec_rate: int = 8000) -> torch.Tensor:
    """Simulate a narrow-band telephone channel; the output has wav's length and sample rate.

    wav: (..., samples) in [-1, 1]. sample_rate: of wav.
    low_hz / high_hz: pass band (G.712: 300-3400 Hz), see :func:`band_pass`.
    mu_law: 8-bit mu-law companding (G.711) at codec_rate (the signal is clipped to [-1, 1]).
    codec_rate: the channel's sample rate; the signal is resampled to it and back (skipped when
        it is not below sample_rate).
    """
    n = wav.shape[-1]
    y = band_pass(wav, sample_rate, low_hz, high_hz)
    down = codec_rate < sample_rate
    if down:
        y = AF.resample(y, sample_rate, codec_rate)
    if mu_law:
        y = AF.mu_law_decoding(AF.mu_law_encoding(y.clamp(-1.0, 1.0), 256), 256).to(wav.dtype)
    if down:
        y = _fit_length(AF.resample(y, codec_rate, sample_rate), n)
    return y


def gain(wav: torch.Tensor, db: float) -> torch.Tensor:
    """wav scaled by db decibels (amplitude x 10**(db/20)); no clipping."""
    return wav * (10.0 ** (db / 20.0))


# ---------------------------------------------------------------------------------------------
# composition

class StoreBabble:
    """A picklable babble source: a random utterance of a store (e.g. ``OnTheFlyStore``) per call.

    store: anything with ``len(store)`` and ``store.audio(i)`` returning a waveform.
    tries: unreadable files (AudioError) are skipped, up to this many picks; then silence.
    """

    def __init__(self, store, tries: int = 3):
        self.store, self.tries = store, tries

    def __call__(self, generator: torch.Generator) -> torch.Tensor:
        from asr.data.audio import AudioError
        for _ in range(self.tries):
            try:
                return self.store.audio(randint(generator, 0, len(self.store) - 1))
            except AudioError:
                continue
        return torch.zeros(0)


class WaveAugment(torch.nn.Module):
    """Waveform augmentation configured by an :class:`AugmentConfig`: ``aug(wav, generator)``.

    cfg: which effects, how likely, and their ranges. sample_rate: of the waveforms.
    babble_source: other utterances for babble noise (see :func:`babble_noise`); without one,
        "babble" is dropped from cfg.noise_types (with a warning).

    Effects in order, each drawn with cfg's probability: speed perturbation, pitch shift,
    reverberation, additive noise, telephone channel, gain. Draws are made only for effects that
    are on, so an all-off config returns the input tensor itself. ``spec_augment(feats,
    generator)`` applies the config's SpecAugment to features (input unchanged when off).
    """

    def __init__(self, cfg: AugmentConfig | None = None, sample_rate: int = 16000,
                 babble_source: BabbleSource | None = None):
        super().__init__()
        cfg = cfg or AugmentConfig()
        self.cfg, self.sample_rate, self.babble_source = cfg, sample_rate, babble_source
        self.speed_factors = [float(f) for f in cfg.speed_factors]
        if any(f <= 0 for f in self.speed_factors):
            raise ValueError(f"augment.speed_factors must be positive: {cfg.speed_factors}")
        for name in ("pitch_prob", "noise_prob", "reverb_prob", "telephone_prob"):
            if not 0.0 <= float(getattr(cfg, name)) <= 1.0:
                raise ValueError(f"augment.{name} must be in [0, 1], not {getattr(cfg, name)}")
        for lo, hi in (("pitch_min", "pitch_max"), ("snr_min", "snr_max"), ("rt60_min", "rt60_max"),
                       ("drr_min", "drr_max"), ("gain_min_db", "gain_max_db"),
                       ("babble_talkers_min", "babble_talkers_max")):
            if float(getattr(cfg, lo)) > float(getattr(cfg, hi)):
                raise ValueError(f"augment.{lo} must not exceed augment.{hi}")
        if cfg.reverb_prob > 0 and cfg.rt60_min <= 0:
            raise ValueError("augment.rt60_min must be positive")
        unknown = [t for t in cfg.noise_types if t not in NOISE_TYPES]
        if unknown:
            raise ValueError(f"augment.noise_types: unknown {unknown} "
                             f"(known: {', '.join(NOISE_TYPES)})")
        self.noise_types = list(cfg.noise_types)
        if "babble" in self.noise_types and babble_source is None:
            self.noise_types = [t for t in self.noise_types if t != "babble"]
            if cfg.noise_prob > 0:
                log.warning("augment: no babble source given; babble noise not used")
        if cfg.noise_prob > 0 and not self.noise_types:
            raise ValueError("augment.noise_prob > 0 but no usable noise type")
        self.specaug = SpecAugment(cfg.freq_masks, cfg.freq_width, cfg.time_masks,
                                   cfg.time_width_ratio) if cfg.specaugment else None

    def _happens(self, p: float, generator: torch.Generator) -> bool:
        return p > 0 and (p >= 1 or torch.rand((), generator=generator).item() < p)

    def noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n samples of unit-RMS noise of a type drawn from the usable noise types."""
        return random_noise(n, generator, self.noise_types, self.babble_source,
                            int(self.cfg.babble_talkers_min), int(self.cfg.babble_talkers_max))

    def forward(self, wav: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """wav: (samples,) float waveform; generator: source of every draw. Returns the
        augmented waveform (a different length only with speed perturbation)."""
        c, sr = self.cfg, self.sample_rate
        if wav.shape[-1] == 0:
            return wav
        if self.speed_factors:
            pick = randint(generator, 0, len(self.speed_factors) - 1)
            wav = speed_perturb(wav, self.speed_factors[pick])
        if self._happens(c.pitch_prob, generator):
            wav = pitch_shift(wav, uniform(generator, c.pitch_min, c.pitch_max))
        if self._happens(c.reverb_prob, generator):
            rir = synthetic_rir(uniform(generator, c.rt60_min, c.rt60_max), sr, generator,
                                uniform(generator, c.drr_min, c.drr_max))
            wav = reverberate(wav, rir)
        if self._happens(c.noise_prob, generator):
            snr = uniform(generator, c.snr_min, c.snr_max)
            wav = add_noise(wav, self.noise(wav.shape[-1], generator), snr)
        if self._happens(c.telephone_prob, generator):
            wav = telephone(wav, sr, mu_law=c.mu_law)
        if c.gain_min_db != 0 or c.gain_max_db != 0:
            wav = gain(wav, uniform(generator, c.gain_min_db, c.gain_max_db))
        return wav

    def spec_augment(self, feats: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The config's SpecAugment on feats (..., frames, dim); feats itself when it is off."""
        return feats if self.specaug is None else self.specaug(feats, generator)
