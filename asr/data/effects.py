"""Waveform effects for augmentation and degraded test sets, each usable on its own.

Every random choice is drawn from a ``torch.Generator`` passed in by the caller (never the
global RNG), so an utterance processed with a generator seeded the same way comes out the same,
whatever the DataLoader worker or the order it is read in (see :func:`item_generator`).
Waveforms are float tensors (..., samples) at ``sample_rate``.

* :func:`speed_perturb` - Kaldi/ESPnet speed perturbation (duration and pitch change together).
* :func:`pitch_shift` - pitch change keeping the duration (phase vocoder + resampling).
* :func:`white_noise`, :func:`pink_noise`, :func:`babble_noise`, :func:`add_noise` - additive
  noise mixed at a target SNR (:func:`random_noise` draws the type).
* :func:`synthetic_rir`, :func:`reverberate` - reverberation with a synthetic room response.
* :class:`asr.data.audio_folder.AudioFolder` - recorded noise (e.g. MUSAN) and room impulse
  responses (e.g. RIRS_NOISES) from folders of audio files: random excerpts and responses.
* :func:`telephone` - 300-3400 Hz band, 8 kHz sampling and mu-law companding.
* :func:`gain` - level change in dB.
* :func:`codec_round_trip` - through a lossy codec (MP3, Vorbis, Opus) at a low bit rate and back.
* :func:`random_channel` - a random recording channel built from the above (band limit, codec,
  telephone line, noise, room), so clean and degraded audio of every source look alike.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Sequence, Union

import soundfile as sf
import torch
import torchaudio.functional as AF

from asr.data.audio import resample

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


def fit_length(wav: torch.Tensor, n: int) -> torch.Tensor:
    """Trim or zero-pad the last dimension to n samples."""
    if wav.shape[-1] >= n:
        return wav[..., :n]
    return torch.nn.functional.pad(wav, (0, n - wav.shape[-1]))


def _power(x: torch.Tensor) -> torch.Tensor:
    return x.double().pow(2).mean()


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
    return resample(wav, r.numerator, r.denominator)


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
    y = resample(y, r.numerator, r.denominator)  # back to n samples, frequencies x ratio
    return fit_length(y, n).reshape(shape)


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
                 talkers_max: int = 7, recorded=None) -> torch.Tensor:
    """n samples of unit-RMS noise of a type drawn uniformly from kinds (white, pink, babble,
    recorded; babble needs its source, see :func:`babble_noise`; recorded an AudioFolder of
    noise, see asr.data.audio_folder.AudioFolder.excerpt). generator: source of every draw. A
    silent recorded excerpt comes back as zeros (add_noise then leaves the signal)."""
    kind = kinds[randint(generator, 0, len(kinds) - 1)]
    if kind == "white":
        return white_noise(n, generator)
    if kind == "pink":
        return pink_noise(n, generator)
    if kind == "recorded":
        if recorded is None:
            raise ValueError("recorded noise needs an AudioFolder of noise files")
        x = recorded.excerpt(n, generator)
        rms = x.double().pow(2).mean().sqrt().item()
        return x / rms if rms > 0 else x
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
        y = resample(y, sample_rate, codec_rate)
    if mu_law:
        y = AF.mu_law_decoding(AF.mu_law_encoding(y.clamp(-1.0, 1.0), 256), 256).to(wav.dtype)
    if down:
        y = fit_length(resample(y, codec_rate, sample_rate), n)
    return y


def gain(wav: torch.Tensor, db: float) -> torch.Tensor:
    """wav scaled by db decibels (amplitude x 10**(db/20)); no clipping."""
    return wav * (10.0 ** (db / 20.0))


# ---------------------------------------------------------------------------------------------
# lossy codecs, random channels

# Codecs a recording may have passed through: (libsndfile format, subtype, its sample rates
# drawn from, its compression-level range). The ranges give ~5-40 kbit/s (libsndfile refuses
# MP3 at level 1.0; Opus stays above 50 kbit/s below level 0.9).
CODECS = {"mp3": ("MP3", "MPEG_LAYER_III", (8000, 11025, 16000), (0.5, 0.99)),
          "vorbis": ("OGG", "VORBIS", (8000, 11025, 16000), (0.5, 1.0)),
          "opus": ("OGG", "OPUS", (8000, 12000, 16000), (0.9, 1.0))}


def codec_round_trip(wav: torch.Tensor, sample_rate: int, codec: str, codec_rate: int,
                     compression: float) -> torch.Tensor:
    """wav (samples,) encoded with codec at codec_rate Hz and decoded back to sample_rate.

    codec: a key of CODECS. compression: libsndfile's compression level, 0 (best quality) to 1
    (lowest bit rate; the codec's range in CODECS keeps it valid and low: game and web audio).
    """
    fmt, subtype = CODECS[codec][:2]
    y = resample(wav, sample_rate, codec_rate)
    buf = io.BytesIO()
    sf.write(buf, y.clamp(-1, 1).numpy(), codec_rate, format=fmt, subtype=subtype,
             compression_level=compression)
    buf.seek(0)
    decoded, rate = sf.read(buf, dtype="float32")
    y = resample(torch.from_numpy(decoded), rate, sample_rate)
    return fit_length(y, wav.shape[-1]).to(wav.dtype)


@dataclass(frozen=True)
class ChannelOptions:
    """Probabilities and ranges of random_channel's stages (each drawn independently)."""

    band_limit: float = 0.5      # a low-pass at 3.4-8 kHz (microphones, resampled audio)
    cutoff_hz: tuple = (3400.0, 8000.0)
    codec: float = 0.4           # a lossy codec round trip (mp3 / vorbis / opus)
    telephone: float = 0.1       # a 300-3400 Hz, 8 kHz, mu-law telephone line
    noise: float = 0.3           # white, pink or babble noise
    snr_db: tuple = (5.0, 30.0)
    reverb: float = 0.3          # a synthetic room
    rt60: tuple = (0.2, 0.8)


def random_channel(wav: torch.Tensor, sample_rate: int, generator: torch.Generator,
                   options: ChannelOptions = ChannelOptions(),
                   babble: BabbleSource | None = None) -> tuple[torch.Tensor, list[str]]:
    """wav (samples,) through a random recording channel; returns (audio, stage names).

    Stages in the order sound meets them: room, noise, band limit, telephone line or codec.
    Every draw comes from generator, so a seeded generator gives the same channel. The result
    is scaled down if it would clip.
    """
    stages: list[str] = []
    y = wav
    o = options
    if uniform(generator, 0, 1) < o.reverb:
        rir = synthetic_rir(uniform(generator, *o.rt60), sample_rate, generator,
                            uniform(generator, 0.0, 8.0))
        y = reverberate(y, rir)
        stages.append("reverb")
    if uniform(generator, 0, 1) < o.noise:
        kinds = ["white", "pink"] + (["babble"] if babble is not None else [])
        y = add_noise(y, random_noise(y.shape[-1], generator, kinds, babble),
                      uniform(generator, *o.snr_db))
        stages.append("noise")
    if uniform(generator, 0, 1) < o.band_limit:
        cutoff = uniform(generator, *o.cutoff_hz)
        y = band_pass(y, sample_rate, 0.0, min(cutoff, sample_rate / 2), transition_hz=200.0)
        stages.append(f"lowpass{cutoff / 1000:.1f}k")
    if uniform(generator, 0, 1) < o.telephone:
        y = telephone(y, sample_rate, mu_law=True)
        stages.append("telephone")
    elif uniform(generator, 0, 1) < o.codec:
        codec = list(CODECS)[randint(generator, 0, len(CODECS) - 1)]
        _, _, rates, levels = CODECS[codec]
        rate = min(rates[randint(generator, 0, len(rates) - 1)], sample_rate)
        y = codec_round_trip(y, sample_rate, codec, rate, uniform(generator, *levels))
        stages.append(f"{codec}{rate // 1000}k")
    peak = y.abs().max()
    if peak > 0.99:
        y = y * (0.99 / peak)
    return y, stages
