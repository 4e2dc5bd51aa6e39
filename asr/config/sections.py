"""The sections of a run configuration, one dataclass each, every field documented."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from asr.config.types import (DECODER_NAMES, Allocator, Amp, Degradation, FeatureKind, LexiconMode, LmSource,
                              NoiseType, NormType, RnnType, Section, Units)


@dataclass
class DataConfig(Section):
    """Where a recipe's data lives and how the built-in corpus is made.

    root: folder of the corpus (manifests/ and features/ beneath it).
    corpus: name passed to ``asr prepare``: builtin, librispeech, commonvoice, ljspeech, timit,
        kaldi, folder (your own recordings: audio + transcript files, or a CSV/TSV) or queen
        (Flight of the Amazon Queen's recorded dialogue, from its Debian package).
    source: where an external corpus is (an extracted copy or a download folder); `make DATA=`.
    hours / dev_hours / test_hours: size of the synthesised built-in corpus.
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
    real_degraded: degraded copies of test_real (the conditions of `degraded`), made by the
        mixture once test_real exists, each a split test_real_<condition> with test_real's
        ids and texts, e.g. [telephone] -> test_real_telephone; add them to test_splits.
    channel_share: share of the built-in mixture's training utterances (of every source, each
        repeat drawn anew) passed through a random channel: band limit 3.4-8 kHz, low-bitrate
        codec, telephone, noise, room (asr.data.effects.random_channel).
    lm_sources: extra English text for the built-in corpus's language model, besides the
        training sentences: gcide (the dictionary's quotations and definitions), manpages
        (manual page prose); held-out lines are always removed.
    """

    SECTION: ClassVar[str] = "data"
    POSITIVE: ClassVar = ("nj", "units_size")
    SHARES: ClassVar = ("dev_fraction", "test_fraction", "channel_share")

    root: str = "data/builtin"
    corpus: str = "builtin"
    source: str = ""
    hours: float = 2.0
    dev_hours: float = 0.15
    test_hours: float = 0.15
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
            raise ValueError(f"data.real_speed_factors must be distinct positive speeds other than "
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
class ModelConfig(Section):
    """Conv front-end (subsampling) -> stack of bidirectional RNN layers -> Linear to vocabulary.

    subsample: time subsampling of the conv front-end, 2 or 4.
    conv_channels: channels of each of the two 3x3 conv layers.
    rnn_type: "lstm" or "gru"; rnn_layers, rnn_hidden: per direction.
    norm_type: normalisation after every RNN layer, on valid frames only (speeds up training):
        "layer" (LayerNorm per frame), "batch" (DeepSpeech2's sequence-wise BatchNorm: statistics
        over all valid frames of the batch) or "none".
    layer_norm: false is norm_type=none (the older switch, kept so recipes and checkpoints
        that use it mean the same); true leaves norm_type as it is.
    bidirectional: false gives a unidirectional (streamable) model; pair it with lookahead.
    lookahead: frames of future context added by a lookahead (row) convolution after the RNNs,
        as in DeepSpeech2 (0 = none).
    projection: LSTM projection size (LSTMP: a smaller recurrent state, 0 = none; LSTM only).
    dropout: between RNN layers and before the output layer.
    """

    SECTION: ClassVar[str] = "model"
    POSITIVE: ClassVar = ("conv_channels", "rnn_layers", "rnn_hidden")
    SHARES: ClassVar = ("dropout",)

    subsample: Literal[2, 4] = 4
    conv_channels: int = 32
    rnn_type: RnnType = "lstm"
    rnn_layers: int = 3
    rnn_hidden: int = 256
    layer_norm: bool = True
    norm_type: NormType = "layer"
    bidirectional: bool = True
    lookahead: int = 0
    projection: int = 0
    dropout: float = 0.1

    def check_values(self) -> None:
        if not self.layer_norm:
            self.norm_type = "none"
        if self.projection and self.rnn_type != "lstm":
            raise ValueError("model.projection needs model.rnn_type=lstm")


@dataclass
class TrainConfig(Section):
    """The CTC training loop.

    exp_dir: run folder (config.yaml, checkpoints/, tensorboard/, train.log).
    epochs: passes over the training data; max_steps > 0 stops earlier.
    max_minutes > 0 stops training after that much wall time (then validates and saves).
    finish_by: a Unix time (s) by which training must end; max_minutes is then capped at the
        minutes left (at least 1). `make demo` sets it, so the whole demo fits its wall-clock
        budget on a slow machine too. 0 = none.
    batch_frames: total input frames per batch (dynamic batch size; 100 frames = 1 s).
    max_batch_utts: cap on utterances per batch.
    max_duration: utterances longer than this (seconds) are skipped, with a count.
    bucketing: batches of similar lengths (little padding); off only to measure what it saves.
    sortagrad: first epoch in shortest-first order (easier start, off the blank plateau sooner).
    rebucket: batches are re-formed every epoch, seeded by (seed, epoch): each utterance moves
        up to this many batches' worth of places in the length order before the cut, so batch
        composition changes while padding barely grows (0 = the same batches every epoch, in a
        new order).
    shuffle_buffer / sort_buffer: data.train_shards only: samples each shard reader mixes
        (seeded), and samples sorted together by length and cut into batches.
    lr: peak learning rate (AdamW), reached after warmup_steps, then cosine decay to lr*final_lr_ratio.
    grad_clip: max global gradient norm.
    device: "auto" (CUDA when present), "cpu" or "cuda"; threads: CPU threads (0 = torch default).
    amp: "none", "bf16" or "fp16" autocast (the CTC loss always runs in fp32).
    accum_steps: batches whose gradients are summed into one update (a bigger effective batch).
    checkpoint_every: also write checkpoints/last.pt every this many updates (0 = epoch ends only).
    compile: torch.compile the model (GPU runs; slow to start on CPU).
    keep_epochs: also keep checkpoints/epoch-<n>.pt of the last this many epochs, for
        `asr average` (checkpoint averaging; 0 = none).
    log_every: steps between log lines; seed: everything random in training.
    allocator: host memory allocator of `asr train` on Linux: "tcmalloc" (the process starts
        again with libtcmalloc_minimal preloaded: 2x the CPU training speed of glibc's
        allocator with flat memory), "glibc", or "auto" (tcmalloc when installed, e.g. Debian's
        libtcmalloc-minimal4, else glibc).
    malloc_mmap_threshold_mb: with glibc's allocator, host blocks of at least this size are
        mapped from and returned to the OS when freed (mallopt; 0 = glibc's default). Batches
        of varying shape otherwise fragment the heap: resident memory grew by GBs over a long
        CPU run; the fixed threshold costs page faults (42 % of the CPU training speed).
    """

    SECTION: ClassVar[str] = "train"
    POSITIVE: ClassVar = ("epochs", "batch_frames", "max_batch_utts", "lr", "accum_steps", "log_every",
                          "grad_clip")
    SHARES: ClassVar = ("final_lr_ratio",)

    exp_dir: str = "exp/builtin/run"
    epochs: int = 10
    max_steps: int = 0
    max_minutes: float = 0.0
    finish_by: float = 0.0
    batch_frames: int = 6000
    max_batch_utts: int = 64
    max_duration: float = 30.0
    bucketing: bool = True
    sortagrad: bool = True
    rebucket: float = 2.0
    shuffle_buffer: int = 1000
    sort_buffer: int = 1024
    lr: float = 2e-3
    final_lr_ratio: float = 0.05
    weight_decay: float = 1e-2
    warmup_steps: int = 200
    grad_clip: float = 5.0
    device: str = "auto"
    threads: int = 0
    amp: Amp = "none"
    num_workers: int = 0
    accum_steps: int = 1
    checkpoint_every: int = 200
    compile: bool = False
    keep_epochs: int = 0
    log_every: int = 25
    seed: int = 1234
    allocator: Allocator = "auto"
    malloc_mmap_threshold_mb: int = 1


@dataclass
class DecodeConfig(Section):
    """Decoding (asr decode / transcribe / tune-lm / bench-decode; see docs/decoding.md).

    decoder: "greedy" (best path), "beam" (beam search, no LM, lexicon-free unless
        lexicon=on) or "beam_lm" (beam search with the KenLM model, lexicon-constrained unless
        lexicon=off, which then needs the character LM, lm.char_order > 0).
    checkpoint: which checkpoint of the run ("best" or "last"); batch_size: utterances per batch.
    beam_size: hypotheses kept per frame; beam_size_token: tokens tried per frame (0 = all);
    beam_threshold: prune hypotheses this far below the best (log-prob units).
    lm_weight: LM weight; word_score: per-word insertion score; unk_score: score of a word
        outside the lexicon (-inf: never output); sil_score: per word-boundary token;
    log_add: merge equal prefixes by log-sum-exp instead of max.
    lexicon: "auto", "on" or "off" (auto = on for beam_lm, off for beam).
    lm_path / lexicon_path: KenLM binary and lexicon ("" = lm.dir/lm.bin, char.bin without a
        lexicon, and lm.dir/lexicon.txt).
    nbest: hypotheses kept per utterance (written as "nbest" in hyp.jsonl when > 1).
    hotwords: words/phrases to favour (a YAML list, or comma-separated on the command line);
    hotwords_file: more of them, one a line; hotword_weight: bonus per matching word (per
        character without a lexicon), in log-probability units.
    """

    SECTION: ClassVar[str] = "decode"
    SIGNED: ClassVar = ("lm_weight", "word_score", "unk_score", "sil_score", "hotword_weight")
    POSITIVE: ClassVar = ("batch_size", "beam_size", "nbest")

    decoder: str = "greedy"  # one of DECODER_NAMES (checked below): built in or registered
    checkpoint: str = "best"
    batch_size: int = 16
    beam_size: int = 32
    beam_size_token: int = 0
    beam_threshold: float = 25.0
    lm_weight: float = 1.0
    word_score: float = 0.0
    unk_score: float = float("-inf")
    sil_score: float = 0.0
    log_add: bool = False
    lexicon: LexiconMode = "auto"
    lm_path: str = ""
    lexicon_path: str = ""
    nbest: int = 1
    hotwords: list[str] = field(default_factory=list)
    hotwords_file: str = ""
    hotword_weight: float = 3.0

    def check_values(self) -> None:
        if self.decoder not in DECODER_NAMES:
            raise ValueError(f"decode.decoder must be one of {', '.join(DECODER_NAMES)}, "
                             f"not {self.decoder!r}")


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


@dataclass
class LmConfig(Section):
    """Word n-gram language model built by `asr lm build` with KenLM (lmplz + build_binary).

    dir: output folder ("" = <data.root>/lm): lm.arpa, lm.bin, lexicon.txt, lm.json.
    text: training text, one sentence a line ("" = <data.root>/manifests/train_text.txt;
        never the test sentences).
    order: word n-gram order (2..6); char_order: also build a character n-gram of this order
        for lexicon-free beam+LM search (0 = none).
    memory: lmplz -S memory cap ("1G", "30%"); discount_fallback: lmplz --discount_fallback
        (small corpora); prune: lmplz --prune thresholds, e.g. "0 0 1" ("" = none).
    transcript_times: the training split's transcripts (unique lines) are added this many more
        times to the text: count merging, which weights the domain of the acoustic training
        (a game's dialogue, a corpus's prompts) against a broad text (0 = the text as it is).
    """

    SECTION: ClassVar[str] = "lm"
    POSITIVE: ClassVar = ("order",)

    dir: str = ""
    text: str = ""
    order: int = 4
    char_order: int = 0
    memory: str = "1G"
    discount_fallback: bool = True
    prune: str = ""
    transcript_times: int = 0


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    lm: LmConfig = field(default_factory=LmConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
