"""The sections of a run configuration, one dataclass each, every field documented: the model,
training, decoding and LM sections here, and the Config of all seven; what goes into the
network (data, features, augment) in asr.config.inputs (importable from here too)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from asr.config.inputs import AugmentConfig, BuiltinConfig, DataConfig, FeatureConfig
from asr.config.types import DECODER_NAMES, Allocator, Amp, LexiconMode, LmBinary, NormType, RnnType, Section

__all__ = ["AugmentConfig", "Config", "DataConfig", "DecodeConfig", "FeatureConfig", "LmConfig",
           "ModelConfig", "TrainConfig"]


@dataclass
class ModelConfig(Section):
    """Conv front-end (subsampling) -> stack of bidirectional RNN layers -> Linear to vocabulary.

    subsample: time subsampling of the conv front-end, 2 or 4.
    conv_channels: channels of each of the two 3x3 conv layers.
    rnn_type: "lstm" or "gru"; rnn_layers, rnn_hidden: per direction.
    norm_type: normalisation after every RNN layer, on valid frames only (speeds up training):
        "layer" (LayerNorm per frame), "batch" (DeepSpeech2's sequence-wise BatchNorm: statistics
        over all valid frames of the batch) or "none".
    layer_norm: the older switch, an alias kept so old configs and checkpoints mean the same:
        false is norm_type=none; true leaves norm_type as it is. Recipes set norm_type.
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
    init_from: fine-tune: start from this model's weights (a bundle folder, a run folder or a
        checkpoint file; "" = random initialisation). Every layer whose tensors all match by
        name and shape is copied; when the units differ the output layer is new except for
        the rows of the tokens both vocabularies share (and the blank). Its features must be
        this run's (else an error names both values); each model key left at its default is
        taken from it (dropout stays this run's). A fresh optimiser and schedule (step 0);
        `--resume` goes on from the run's own last.pt, not from init_from again (which must
        still be there: its architecture is read). See asr.finetune, docs/training.md.
    init_norm: the CMVN statistics (the model's feature mean/std buffers) of a fine-tuned
        model: "data" (computed on this run's training data) or "model" (kept from init_from).
    freeze: parameter-name prefixes whose weights are not trained (requires_grad off, left out
        of the optimiser), e.g. [frontend] or [frontend, rnn.rnns.0]. The names:
        frontend (frontend.convs.<i>, frontend.norms.<i>: the two conv layers, their
        BatchNorms), rnn.rnns.<i> (RNN layer i, both directions), rnn.norms.<i> (the norm
        after it), lookahead, output. A frozen BatchNorm stays in eval mode: its running
        statistics stay as loaded and normalise (LayerNorm has none).
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
    init_from: str = ""  # a model to fine-tune from
    init_norm: Literal["data", "model"] = "data"  # whose CMVN statistics a fine-tuned model uses
    freeze: list[str] = field(default_factory=list)  # parameter-name prefixes left untrained


@dataclass
class DecodeConfig(Section):
    """Decoding (asr decode / transcribe / tune-lm / bench-decode; see docs/decoding.md).

    decoder: "greedy" (best path), "beam" (beam search, no LM, lexicon-free unless
        lexicon=on) or "beam_lm" (beam search with the KenLM model, lexicon-constrained unless
        lexicon=off, which then needs the character LM, lm.char_order > 0).
    checkpoint: which checkpoint of the run ("best" or "last").
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
    POSITIVE: ClassVar = ("beam_size", "nbest")

    decoder: str = "greedy"  # one of DECODER_NAMES (checked below): built in or registered
    checkpoint: str = "best"
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
class LmConfig(Section):
    """Word n-gram language model built by `asr lm build` with KenLM (lmplz + build_binary).

    dir: output folder ("" = <data.root>/lm): lm.arpa, lm.bin, lexicon.txt, lm.json.
    text: training text, one sentence a line ("" = <data.root>/manifests/train_text.txt;
        never the test sentences).
    order: word n-gram order (2..6); char_order: also build a character n-gram of this order
        for lexicon-free beam+LM search (0 = none).
    memory: lmplz -S memory cap ("1G", "30%"); discount_fallback: lmplz --discount_fallback
        (small corpora); prune: lmplz --prune thresholds, e.g. "0 0 1" ("" = none).
    binary: lm.bin's KenLM format: "probing" (hash tables: fastest to query, largest), "trie"
        (about half the size) or "trie-q8" (the trie with probabilities and back-offs quantised
        to 8 bits: about a quarter; what a downloadable bundle wants).
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
    binary: LmBinary = "probing"
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
    builtin: BuiltinConfig = field(default_factory=BuiltinConfig)
