"""The sections of a run configuration for what goes into the network: the data (where the
corpus is), how the built-in corpus is made, the features computed from it, and the training
augmentation. One dataclass each, every field documented; Config (asr.config.sections) holds
them with the others."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from asr.config.types import Degradation, FeatureKind, LmSource, NoiseType, Section, Units


@dataclass
class DataConfig(Section):
    """Where a recipe's data lives, what its units are and how it is prepared (the built-in
    corpus's own settings are the builtin section: BuiltinConfig).

    root: folder of the corpus (manifests/ and features/ beneath it).
    corpus: name passed to ``asr prepare``: builtin, librispeech, commonvoice, ljspeech, timit,
        kaldi, folder (your own recordings: audio + transcript files, or a CSV/TSV) or queen
        (Flight of the Amazon Queen's recorded dialogue, from its Debian package).
    source: where an external corpus is (an extracted copy or a download folder); `make DATA=`.
    seed: corpus generation seed (sentences, voices).
    train_split / dev_split: feature-store splits used for training and validation.
    train_shards: train from tar shards (`asr shard`) streamed in order instead of the
        train_split store: a shard folder, or shard URLs with braces, local, https:// or pipe:
        ("https://host/d/shard-{000000..000031}.tar"); shard_index: their shards.json (a path or
        URL; needed with URLs for the sample counts, CMVN and exact resume with loader workers).
    test_splits: splits decoded and scored by ``make decode score``.
    nj: parallel workers for data preparation and feature extraction.
    subsets: corpus parts to prepare: LibriSpeech subsets (train-clean-100, ..., dev-clean,
        test-other; the train-* ones are concatenated into the train split), Common Voice TSV
        names (train, dev, test, validated, ...); empty: the corpus default.
    download: fetch missing LibriSpeech archives (resumable, md5-checked) into data.source.
    mirror: base URL of the LibriSpeech archives ("" = https://www.openslr.org/resources/12).
    lm_text: with download, also fetch librispeech-lm-norm.txt.gz (OpenSLR 11); a copy already
        in data.source is always used -> manifests/lm_text.txt.
    language: the transcripts' language, an ISO 639 code ("en", "de", "ru", "zh-CN"): how text
        is normalised (asr.text.normalize.normalize_text: English keeps a-z and the apostrophe;
        any other language keeps its script's letters) and, for chars, where the vocabulary
        comes from (English: fixed; others: the training text's characters, written once to
        <root>/lang/chars.txt). Scripts without spaces (zh, ja, th, ...) are scored CER first.
    units: "char" (characters of normalised text), "phone" (space-separated phone tokens:
        TIMIT), "phone_lexicon" (English words as CMU phones without stress: each word's first
        pronunciation in <root>/lang/lexicon_phones.txt, built once from the train and dev
        transcripts with CMUdict and flite's letter-to-sound rules, asr.text.lexicon; words come
        back through a lexicon beam search), or "bpe" / "unigram" (sentencepiece subwords of
        normalised text, trained once from the training transcripts into
        <root>/lang/<units>_<units_size>.model and stored in every checkpoint); phone_set: 39, 48 or 61 TIMIT phones in the manifests (scored
        folded to 39); units_size: the sentencepiece vocabulary size (bpe/unigram; a soft
        limit: a small corpus may give fewer pieces).
    dev_fraction / test_fraction: held-out shares for corpora without official splits
        (LJSpeech, your own recordings, a single Kaldi data dir).
    check_audio: decode every file during preparation (finds corrupt, truncated, NaN and
        silent audio; exact durations) instead of reading headers only.
    min_letters_per_second: reject utterances whose transcript has fewer letters per second of
        audio than this (0 = off; real recordings: ~1.5): far too little text for the audio is
        likely the wrong transcript (too much text is caught by the CTC label-length check).
    degraded: degraded copies of the degrade_from split to make after preparation, each a split
        named <degrade_from>_<condition>: noise10 / noise0 (white, pink or babble noise at 10 /
        0 dB SNR), reverb (synthetic room, RT60 0.3-0.9 s), telephone (300-3400 Hz, 8 kHz,
        mu-law); see data_prep/degrade.py. Add the splits to test_splits to score them.
    """

    SECTION: ClassVar[str] = "data"
    POSITIVE: ClassVar = ("nj", "units_size")
    SHARES: ClassVar = ("dev_fraction", "test_fraction")

    root: str = "data/builtin"
    corpus: str = "builtin"
    source: str = ""
    seed: int = 0
    train_split: str = "train"
    dev_split: str = "dev"
    train_shards: str = ""
    shard_index: str = ""
    test_splits: list[str] = field(default_factory=lambda: ["test", "test_unseen_voice"])
    nj: int = 2
    subsets: list[str] = field(default_factory=list)
    download: bool = False
    mirror: str = ""
    lm_text: bool = False
    language: str = "en"
    units: Units = "char"
    phone_set: Literal[39, 48, 61] = 39
    units_size: int = 256
    dev_fraction: float = 0.05
    test_fraction: float = 0.05
    check_audio: bool = True
    min_letters_per_second: float = 0.0
    degraded: list[Degradation] = field(default_factory=list)
    degrade_from: str = "test"


@dataclass
class BuiltinConfig(Section):
    """The built-in corpus (data.corpus=builtin): synthetic speech and the real recorded speech
    of Debian's game data mixed in; read by data_prep (prepare, mixture) only.

    hours / dev_hours / test_hours: size of the synthesised corpus.
    voices: built-in corpus engine shares, e.g. {espeak: 0.2, pico: 0.3} (engines espeak, flite,
        festival, pico, piper; {} = the defaults of data_prep/builtin/voices.py).
    real: real recorded speech mixed into the built-in corpus: {corpus: times}, e.g. {queen: 2,
        hedgewars: 2}: each corpus's Debian package is fetched with `apt-get download`, imported,
        cut into held-out speakers (test_real, dev_real) and the rest repeated `times` in
        train (fractions repeat a seeded part); see data_prep/mixture.py. {} = none.
    real_test_hours / real_dev_hours: speech of the held-out real speakers, over all sources.
    real_speed_factors: speed-perturbed copies of the real training speech, one per factor
        (e.g. [0.9, 1.1]; each > 0, not 1; [] = none): resampled as in Kaldi's speed
        perturbation (tempo, pitch and formants move together: new voices), written once at
        preparation to <root>/audio/speed/ with ids and speakers suffixed -sp<factor>, and
        added to their corpus's training part (so repeated `times` like it). Made from the
        training part only, never from a held-out speaker or line; see data_prep/mixture.py.
    real_degraded: degraded copies of test_real (the conditions of data.degraded), made by the
        mixture once test_real exists, each a split test_real_<condition> with test_real's
        ids and texts, e.g. [telephone] -> test_real_telephone; add them to test_splits.
    channel_share: share of the built-in mixture's training utterances (of every source, each
        repeat drawn anew) passed through a random channel: band limit 3.4-8 kHz, low-bitrate
        codec, telephone, noise, room (asr.data.effects.random_channel).
    lm_sources: extra English text for the built-in corpus's language model, besides the
        training sentences: gcide (the dictionary's quotations and definitions), manpages
        (manual page prose); held-out lines are always removed.
    """

    SECTION: ClassVar[str] = "builtin"
    SHARES: ClassVar = ("channel_share",)

    hours: float = 2.0
    dev_hours: float = 0.15
    test_hours: float = 0.15
    voices: dict[str, float] = field(default_factory=dict)
    real: dict[str, float] = field(default_factory=dict)
    real_test_hours: float = 0.3
    real_dev_hours: float = 0.15
    real_speed_factors: list[float] = field(default_factory=list)
    real_degraded: list[Degradation] = field(default_factory=list)
    channel_share: float = 0.0
    lm_sources: list[LmSource] = field(default_factory=list)

    def check_values(self) -> None:
        factors = self.real_speed_factors
        bad = any(not 0 < f < float("inf") or f == 1 for f in factors)
        if bad or len(set(factors)) < len(factors):
            raise ValueError(f"builtin.real_speed_factors must be distinct positive speeds other than "
                             f"1 (1 is the original speech), e.g. [0.9, 1.1], not {factors}")


@dataclass
class FeatureConfig(Section):
    """Log-mel filterbank (or linear spectrogram) features computed with torchaudio.

    kind: "fbank" (log-mel) or "spectrogram" (log linear-frequency power).
    n_mels: mel bands; win_ms / hop_ms: analysis window and shift in milliseconds.
    on_the_fly: compute features from the audio during training/decoding (DataLoader workers)
        instead of reading the feature store: for corpora too large to store features for.
    on_device: with on_the_fly, the loader only reads audio and the features of each batch are
        computed on the training device (the GPU when there is one) in the training process.
    """

    SECTION: ClassVar[str] = "features"
    POSITIVE: ClassVar = ("sample_rate", "n_mels", "win_ms", "hop_ms")

    kind: FeatureKind = "fbank"
    sample_rate: int = 16000
    n_mels: int = 80
    win_ms: float = 25.0
    hop_ms: float = 10.0
    on_the_fly: bool = False
    on_device: bool = False


@dataclass
class AugmentConfig(Section):
    """Data augmentation applied to training utterances; every effect is off by default.

    specaugment: mask features (after feature extraction; works on stored features too).
    freq_masks / freq_width: number of frequency masks and the widest one, in feature bins
        (each mask's width is drawn uniformly from 0..freq_width).
    time_masks / time_width_ratio: number of time masks and the widest one as a share of the
        utterance's frames (0.05: at most 5% of the frames each).
    speed_factors: speed perturbation factors drawn uniformly per utterance, e.g. [0.9, 1.0, 1.1]
        (1.1: 10% faster and shorter, pitch 10% higher); empty: off. Needs the audio
        (features.on_the_fly).
    pitch_prob / pitch_min / pitch_max: chance of a pitch shift keeping the duration, and its
        range in semitones.
    noise_prob: chance of additive noise; snr_min / snr_max: its signal-to-noise ratio in dB,
        drawn uniformly; noise_types: drawn uniformly from white, pink (1/f), babble (a sum of
        babble_talkers_min..babble_talkers_max other utterances; needs a babble source) and
        recorded (an excerpt of a file of noise_dirs; training refuses it without noise_dirs:
        checked when the augmenter is built, so a recipe and the command line may each give one).
    noise_dirs: folders of recorded noise, e.g. MUSAN's noise/ and music/ (searched recursively
        for .wav, .flac and .ogg files; resampled to features.sample_rate, mixed to mono, looped
        when shorter than the utterance). While noise_types is left at its default, recorded is
        drawn too (see noise_kinds): white, pink, babble and recorded, a quarter each.
    reverb_prob: chance of reverberation; rt60_min / rt60_max: the synthetic room impulse
        response's reverberation time in seconds; drr_min / drr_max: its direct-to-reverberant
        energy ratio in dB.
    rir_dirs: folders of recorded room impulse responses, e.g. RIRS_NOISES'
        real_rirs_isotropic_noises/ and simulated_rirs/ (searched like noise_dirs; first channel,
        cut to start at its direct-path peak, unit energy). When given, a reverberation uses one
        of them (drawn uniformly) with chance rir_share, else the synthetic response.
    telephone_prob: chance of a telephone channel (300-3400 Hz, 8 kHz); mu_law: with 8-bit
        mu-law companding.
    gain_min_db / gain_max_db: random level change in dB (both 0: off).
    """

    SECTION: ClassVar[str] = "augment"
    SIGNED: ClassVar = ("pitch_min", "pitch_max", "snr_min", "snr_max", "drr_min", "drr_max",
                        "gain_min_db", "gain_max_db")
    DEFAULT_NOISE_TYPES: ClassVar[tuple[str, ...]] = ("white", "pink", "babble")

    specaugment: bool = False
    freq_masks: int = 2
    freq_width: int = 27
    time_masks: int = 2
    time_width_ratio: float = 0.05
    speed_factors: list[float] = field(default_factory=list)
    pitch_prob: float = 0.0
    pitch_min: float = -2.0
    pitch_max: float = 2.0
    noise_prob: float = 0.0
    snr_min: float = 0.0
    snr_max: float = 20.0
    noise_types: list[NoiseType] = field(default_factory=lambda: ["white", "pink", "babble"])
    noise_dirs: list[str] = field(default_factory=list)
    babble_talkers_min: int = 3
    babble_talkers_max: int = 7
    reverb_prob: float = 0.0
    rt60_min: float = 0.2
    rt60_max: float = 0.8
    drr_min: float = 0.0
    drr_max: float = 10.0
    rir_dirs: list[str] = field(default_factory=list)
    rir_share: float = 1.0
    telephone_prob: float = 0.0
    mu_law: bool = True
    gain_min_db: float = 0.0
    gain_max_db: float = 0.0

    def check_values(self) -> None:
        if any(f <= 0 for f in self.speed_factors):
            raise ValueError(f"augment.speed_factors must be positive: {self.speed_factors}")
        for name in ("pitch_prob", "noise_prob", "reverb_prob", "rir_share", "telephone_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"augment.{name} must be in [0, 1], not {getattr(self, name)}")
        for lo, hi in (("pitch_min", "pitch_max"), ("snr_min", "snr_max"), ("rt60_min", "rt60_max"),
                       ("drr_min", "drr_max"), ("gain_min_db", "gain_max_db"),
                       ("babble_talkers_min", "babble_talkers_max")):
            if getattr(self, lo) > getattr(self, hi):
                raise ValueError(f"augment.{lo} must not exceed augment.{hi}")
        if self.reverb_prob > 0 and self.rt60_min <= 0:
            raise ValueError("augment.rt60_min must be positive")

    @property
    def noise_kinds(self) -> list[str]:
        """The noise types drawn from: noise_types, plus recorded when noise_dirs are given and
        noise_types is left at its default."""
        kinds = list(self.noise_types)
        if self.noise_dirs and kinds == list(self.DEFAULT_NOISE_TYPES):
            kinds.append("recorded")
        return kinds

    @property
    def wave_active(self) -> bool:
        """Whether any waveform effect is on (they need the audio, not stored features)."""
        return bool(self.speed_factors or self.pitch_prob > 0 or self.noise_prob > 0
                    or self.reverb_prob > 0 or self.telephone_prob > 0
                    or self.gain_min_db != 0 or self.gain_max_db != 0)
