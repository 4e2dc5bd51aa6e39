"""Training augmentation: SpecAugment on features, and the Augmenter that applies a config's
waveform effects (asr.data.effects) and SpecAugment to one utterance.

Draws come from a ``torch.Generator`` passed in by the caller (asr.data.effects.item_generator:
seeded by run, epoch and utterance), so augmentation is the same in any DataLoader worker and on
resume. Features are (..., frames, dim) as made by :class:`asr.data.features.FeatureExtractor`.
:class:`Augmenter` chains the effects as set by an :class:`AugmentConfig` (everything off by
default; its values are checked when the config is built); :func:`augmenter_for` makes the one
of a run's augment section, or None when it turns everything off.
"""

from __future__ import annotations

import logging

import torch

from asr.config import AugmentConfig
from asr.data.audio import AudioError
from asr.data.audio_folder import AudioFolder
from asr.data.effects import (BabbleSource, add_noise, gain, item_generator, pitch_shift, randint,
                              random_noise, reverberate, speed_perturb, synthetic_rir, telephone,
                              uniform)

__all__ = ["AudioFolder", "Augmenter", "SpecAugment", "StoreBabble", "augmenter_for",
           "item_generator", "spec_augment", "spec_augment_masks"]

log = logging.getLogger(__name__)


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
# composition

class StoreBabble:
    """A picklable babble source: a random utterance of a store (e.g. ``OnTheFlyStore``) per call.

    store: anything with ``len(store)`` and ``store.audio(i)`` returning a waveform.
    tries: unreadable files (AudioError) are skipped, up to this many picks; then silence.
    """

    def __init__(self, store, tries: int = 3):
        self.store, self.tries = store, tries

    def __call__(self, generator: torch.Generator) -> torch.Tensor:
        for _ in range(self.tries):
            try:
                return self.store.audio(randint(generator, 0, len(self.store) - 1))
            except AudioError:
                continue
        return torch.zeros(0)


class Augmenter(torch.nn.Module):
    """Waveform augmentation configured by an :class:`AugmentConfig`: ``aug(wav, generator)``.

    cfg: which effects, how likely, and their ranges. sample_rate: of the waveforms.
    babble_source: other utterances for babble noise (see :func:`babble_noise`); without one,
        "babble" is dropped from cfg.noise_types (with a warning).

    Effects in order, each drawn with cfg's probability: speed perturbation, pitch shift,
    reverberation, additive noise, telephone channel, gain. Draws are made only for effects that
    are on, so an all-off config returns the input tensor itself. ``spec_augment(feats,
    generator)`` applies the config's SpecAugment to features (input unchanged when off).
    Noise types are cfg.noise_kinds ("recorded": excerpts of cfg.noise_dirs' files); with
    cfg.rir_dirs, a reverberation convolves with one of their responses (chance cfg.rir_share)
    instead of a synthetic one. Their files are listed here (:class:`AudioFolder`: ValueError
    for a folder without audio), only when the effect is on.
    """

    def __init__(self, cfg: AugmentConfig | None = None, sample_rate: int = 16000,
                 babble_source: BabbleSource | None = None):
        super().__init__()
        cfg = cfg or AugmentConfig()
        self.cfg, self.sample_rate, self.babble_source = cfg, sample_rate, babble_source
        self.speed_factors = cfg.speed_factors
        self.noise_types = list(cfg.noise_kinds)
        if "babble" in self.noise_types and babble_source is None:
            self.noise_types = [t for t in self.noise_types if t != "babble"]
            if cfg.noise_prob > 0:
                log.warning("augment: no babble source given; babble noise not used")
        if cfg.noise_prob > 0 and not self.noise_types:
            raise ValueError("augment.noise_prob > 0 but no usable noise type")
        self.noise_folder = self.rir_folder = None
        if cfg.noise_prob > 0 and "recorded" in self.noise_types:
            if not cfg.noise_dirs:
                raise ValueError("augment.noise_types has 'recorded' but augment.noise_dirs is "
                                 "empty: give folders of recorded noise (e.g. augment.noise_dirs="
                                 "[/data/musan/noise,/data/musan/music]) or drop 'recorded'")
            self.noise_folder = AudioFolder(cfg.noise_dirs, sample_rate, "noise")
            log.info("augment: %d recorded noise files in %s", len(self.noise_folder),
                     ", ".join(cfg.noise_dirs))
        elif cfg.noise_dirs:
            log.warning("augment.noise_dirs not used (noise_prob is 0 or noise_types lacks "
                        "'recorded')")
        if cfg.reverb_prob > 0 and cfg.rir_dirs and cfg.rir_share > 0:
            self.rir_folder = AudioFolder(cfg.rir_dirs, sample_rate, "rir")
            log.info("augment: %d room impulse responses in %s", len(self.rir_folder),
                     ", ".join(cfg.rir_dirs))
        elif cfg.rir_dirs:
            log.warning("augment.rir_dirs not used (reverb_prob or rir_share is 0)")
        self.specaug = SpecAugment(cfg.freq_masks, cfg.freq_width, cfg.time_masks,
                                   cfg.time_width_ratio) if cfg.specaugment else None

    def _happens(self, p: float, generator: torch.Generator) -> bool:
        return p > 0 and (p >= 1 or torch.rand((), generator=generator).item() < p)

    def noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n samples of unit-RMS noise of a type drawn from the usable noise types."""
        return random_noise(n, generator, self.noise_types, self.babble_source,
                            self.cfg.babble_talkers_min, self.cfg.babble_talkers_max,
                            self.noise_folder)

    def rir(self, generator: torch.Generator) -> torch.Tensor:
        """A room impulse response: a recorded one (with chance cfg.rir_share, when rir_dirs
        are given and one is readable), else a synthetic one of the config's ranges."""
        c = self.cfg
        if self.rir_folder is not None and self._happens(c.rir_share, generator):
            rir = self.rir_folder.rir(generator)
            if rir is not None:
                return rir
        return synthetic_rir(uniform(generator, c.rt60_min, c.rt60_max), self.sample_rate,
                             generator, uniform(generator, c.drr_min, c.drr_max))

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
            wav = reverberate(wav, self.rir(generator))
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


def augmenter_for(cfg: AugmentConfig, sample_rate: int, train_store=None) -> Augmenter | None:
    """The Augmenter of an augment section, or None when every effect is off; says in the log
    which effects are on. Babble noise draws its talkers from the training utterances of
    train_store when it holds audio (an on-the-fly store; not a feature store, not shards)."""
    if not (cfg.specaugment or cfg.wave_active):
        return None
    babble = StoreBabble(train_store) if hasattr(train_store, "audio") else None
    aug = Augmenter(cfg, sample_rate, babble)
    on = [name for name, active in (
        ("SpecAugment", cfg.specaugment), (f"speed {cfg.speed_factors}", bool(cfg.speed_factors)),
        (f"pitch p={cfg.pitch_prob}", cfg.pitch_prob > 0),
        (f"noise p={cfg.noise_prob} {cfg.snr_min:g}-{cfg.snr_max:g} dB {aug.noise_types}",
         cfg.noise_prob > 0),
        (f"reverb p={cfg.reverb_prob}", cfg.reverb_prob > 0),
        (f"telephone p={cfg.telephone_prob}", cfg.telephone_prob > 0),
        (f"gain {cfg.gain_min_db:g}..{cfg.gain_max_db:g} dB",
         cfg.gain_min_db != 0 or cfg.gain_max_db != 0))
        if active]
    log.info("augmentation: %s", ", ".join(on))
    return aug
