"""Output units of a CTC model behind one interface (Vocab): characters (CharVocab), phones (PhoneVocab) or
sentencepiece subwords (SentencePieceVocab, data.units=bpe or unigram).

A phone transcript is a string of space-separated phone tokens ("sil sh iy hh ae d sil"); its
tokens are the labels, so WER computed over such strings is the phone error rate (PER).

Subword units: a sentencepiece model (BPE or unigram, data.units_size pieces) trained once per
corpus from the training transcripts into <data.root>/lang/<units>_<size>.model
(asr.text.units.build_vocab); token 0 is the CTC blank, then the model's pieces in sentencepiece order
("<unk>", "\u2581the", "at", ...). A piece that begins with "\u2581" starts a word. The model
itself (its serialized proto) travels inside every checkpoint as a uint8 tensor
(``units_model``), so a checkpoint alone decodes.

Phones are TIMIT's (asr.text.phones: the 61/48/39 sets and their folding).

    vocab = make_vocab("phone", phone_set=39)      # or make_vocab("char")
    vocab.encode("sil sh iy sil") -> [ids]; vocab.decode(ids) -> "sil sh iy sil"
    vocab_from_tokens(checkpoint["vocab"])         # the right class back from a token list

Which vocabulary a config or a checkpoint has, phone lexicons included: asr.text.units.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from asr.config import SUBWORD_UNITS, Units, choices
from asr.text.phones import PHONE_SETS, TIMIT_39
from asr.utils import atomic_open, atomic_write_text

log = logging.getLogger(__name__)

BLANK = "<blank>"


class Vocab:
    """What every vocabulary offers: tokens (index 0 is the CTC blank), index (token -> id),
    blank, len(), encode(text) -> ids (ValueError naming what is outside), covers(text),
    unknown(text) (what is outside) and decode(ids) -> text (blanks dropped)."""

    BLANK = BLANK
    separator = ""  # joins decoded tokens

    def _set_tokens(self, tokens: list[str]) -> None:
        if not tokens or tokens[0] != BLANK:
            raise ValueError("the first token of a CTC vocabulary must be the blank")
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def blank(self) -> int:
        return 0

    def units(self, text: str) -> list[str]:
        """The tokens text is written in (characters; phones split at spaces)."""
        return list(text)

    def unknown(self, text: str) -> list[str]:
        return sorted({t for t in self.units(text) if t not in self.index or t == BLANK})

    def covers(self, text: str) -> bool:
        return not self.unknown(text)

    def encode(self, text: str) -> list[int]:
        """Token ids of text; raises ValueError naming tokens outside the vocabulary."""
        unknown = self.unknown(text)
        if unknown:
            raise ValueError(f"{self.what} outside the vocabulary: {unknown!r}")
        return [self.index[t] for t in self.units(text)]

    def decode(self, ids) -> str:
        return self.separator.join(self.tokens[i] for i in ids if i != self.blank)


class CharVocab(Vocab):
    """Characters of normalised text."""

    what = "characters"

    def __init__(self, tokens: list[str] | None = None):
        self._set_tokens(list(tokens) if tokens else
                         [BLANK, " ", "'"] + [chr(c) for c in range(ord("a"), ord("z") + 1)])

    def covers(self, text: str) -> bool:  # the hot path of corpus checks: no set built
        return all(c in self.index for c in text)


class PhoneVocab(Vocab):
    """Phone tokens (space-separated in transcripts)."""

    what = "phones"
    separator = " "

    def __init__(self, tokens: list[str] | None = None):
        tokens = list(tokens) if tokens else [BLANK, *TIMIT_39]
        bad = [t for t in tokens[1:] if not t or any(c.isspace() for c in t) or t == BLANK]
        if bad or len(set(tokens)) != len(tokens):
            raise ValueError(f"phone tokens must be unique and without spaces: {bad or tokens}")
        self._set_tokens(tokens)

    @classmethod
    def timit(cls, phone_set: int = 39) -> "PhoneVocab":
        if phone_set not in PHONE_SETS:
            raise ValueError(f"phone_set must be 39, 48 or 61, not {phone_set}")
        return cls([BLANK, *PHONE_SETS[phone_set]])

    def units(self, text: str) -> list[str]:
        return text.split()


UNITS = choices(Units)
WORD_START = "\u2581"  # sentencepiece's word-start mark, "▁"


class SentencePieceVocab(Vocab):
    """Sentencepiece subword tokens; index 0 is the CTC blank, index i + 1 is piece i.

    model_proto: the serialized sentencepiece model (bytes, the content of a .model file).
    The Vocab interface, plus
    ``pieces(text)`` (the piece strings) and ``word_prefix`` ("▁": a piece that begins with it
    starts a word). Text is normalised text (asr.text.normalize.normalize_text); encode raises ValueError
    when a piece would be "<unk>" (characters the model has never seen), and covers() is False.
    """

    word_prefix = WORD_START

    def __init__(self, model_proto: bytes, kind: str = ""):
        import sentencepiece as spm
        self.model_proto = bytes(model_proto)
        self.kind = kind
        self.sp = spm.SentencePieceProcessor(model_proto=self.model_proto)
        self.unk = self.sp.unk_id()
        pieces = [self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())]
        if BLANK in pieces:
            raise ValueError(f"a sentencepiece model for CTC must not have a {BLANK!r} piece")
        # shifted by one: sentencepiece's ids (unk 0; bos/eos, if a model has them) never meet
        # the blank
        self._set_tokens([BLANK, *pieces])

    @classmethod
    def from_file(cls, path: str | Path, kind: str = "") -> "SentencePieceVocab":
        return cls(Path(path).read_bytes(), kind)

    def __getstate__(self):  # DataLoader workers: the processor is rebuilt from the proto
        return {"model_proto": self.model_proto, "kind": self.kind}

    def __setstate__(self, state):
        self.__init__(state["model_proto"], state.get("kind", ""))

    def __eq__(self, other) -> bool:
        return (isinstance(other, SentencePieceVocab) and self.tokens == other.tokens
                and self.model_proto == other.model_proto)

    def __hash__(self) -> int:
        return hash(tuple(self.tokens))

    def pieces(self, text: str) -> list[str]:
        """The piece strings of text: "hello world" -> ["▁he", "llo", "▁world"]."""
        return self.sp.encode(text, out_type=str)

    def unknown(self, text: str) -> list[str]:
        """Characters of text that only the "<unk>" piece could spell."""
        return sorted({c for c in text if not c.isspace() and self.sp.piece_to_id(c) == self.unk})

    def encode(self, text: str) -> list[int]:
        """Token ids of text; raises ValueError naming characters outside the model."""
        ids = self.sp.encode(text)
        if self.unk in ids:
            raise ValueError(f"characters outside the sentencepiece model: "
                             f"{self.unknown(text) or text!r}")
        return [i + 1 for i in ids]

    def covers(self, text: str) -> bool:
        return self.unk not in self.sp.encode(text)

    def decode(self, ids) -> str:
        """Text of token ids (blanks and "<unk>" dropped; "▁" becomes a space between words)."""
        return self.sp.decode([int(i) - 1 for i in ids if i != self.blank and int(i) - 1 != self.unk])

    def word_starts(self, token_id: int) -> bool:
        """Whether this token begins a word (its piece begins with "▁")."""
        return self.tokens[token_id].startswith(WORD_START)


def train_sentencepiece(text_path: str | Path, model_path: str | Path, kind: str = "bpe",
                        size: int = 256, seed: int = 0, max_sentences: int = 2_000_000) -> Path:
    """Train a sentencepiece model deterministically and write it atomically; returns its path.

    text_path: training text, one (normalised) sentence a line. model_path: the .model file.
    kind: "bpe" or "unigram". size: the vocabulary size (pieces, "<unk>" included; a soft
    limit: a text too small for it gives fewer pieces). seed: sentencepiece's random seed.
    max_sentences: at most this many lines are used (a seeded sample of larger texts).
    Options: every character of the text is kept (character_coverage=1.0), no bos/eos pieces,
    identity normalisation (the text is normalised already), one thread: the same text gives
    the same model, byte for byte.
    """
    import io
    import sentencepiece as spm
    if kind not in SUBWORD_UNITS:
        raise ValueError(f"sentencepiece model type must be bpe or unigram, not {kind!r}")
    with open(text_path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    if not lines:
        raise ValueError(f"{text_path}: no text to train a sentencepiece model on")
    chars = len(set("".join(lines)) - {" "})
    if chars + 2 > size:  # every character is a piece (coverage 1.0), plus <unk> and "▁"
        raise ValueError(f"{text_path} has {chars} distinct characters, more than a {kind} model "
                         f"of {size} pieces can hold: set data.units_size above {chars + 2} "
                         "(scripts with thousands of characters: data.units=char)")
    if hasattr(spm, "set_random_generator_seed"):
        spm.set_random_generator_seed(seed)
    out = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_writer=out, model_type=kind, vocab_size=size,
            character_coverage=1.0, unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1,
            normalization_rule_name="identity", hard_vocab_limit=False, num_threads=1,
            input_sentence_size=max_sentences, shuffle_input_sentence=True, minloglevel=2)
    except RuntimeError as e:
        raise ValueError(f"cannot train a {kind} model of {size} pieces from {text_path}: {e}") from None
    with atomic_open(model_path, "wb") as f:
        f.write(out.getvalue())
    return Path(model_path)


def subword_model_path(data_cfg) -> Path:
    """<data.root>/lang/<units>_<units_size>.model."""
    return Path(data_cfg.root) / "lang" / f"{data_cfg.units}_{data_cfg.units_size}.model"


def _training_text(data_cfg, dst: Path) -> Path:
    """manifests/train_text.txt, or else the texts of the train_split manifest written to dst."""
    import json
    mdir = Path(data_cfg.root) / "manifests"
    if (mdir / "train_text.txt").is_file():
        return mdir / "train_text.txt"
    manifest = mdir / f"{data_cfg.train_split}.jsonl"
    if not manifest.is_file():
        raise FileNotFoundError(f"no {mdir / 'train_text.txt'} or {manifest} to train the "
                                f"{data_cfg.units} model on (run `asr prepare` first)")
    with open(manifest, encoding="utf-8") as fin, open(dst, "w", encoding="utf-8") as fout:
        for line in fin:
            if line.strip():
                fout.write(str(json.loads(line).get("text", "")).strip() + "\n")
    return dst


def character_inventory(text_path: str | Path) -> list[str]:
    """The tokens of a character vocabulary for a text of any script: the blank, the space, then
    every other character of the text in code-point order."""
    chars: set[str] = set()
    with open(text_path, encoding="utf-8") as f:
        for line in f:
            chars.update(line.strip())
    chars.discard(" ")
    if not chars:
        raise ValueError(f"{text_path}: no text to take a character vocabulary from")
    return [BLANK, " ", *sorted(chars)]


def with_training_text(data_cfg, path: Path, build) -> None:
    """Run build(text_path) on the corpus's training text (see _training_text) for `path`."""
    tmp_text = path.with_name(f".{path.stem}.text.tmp{os.getpid()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        build(_training_text(data_cfg, tmp_text))
    finally:
        tmp_text.unlink(missing_ok=True)


def script_char_vocab(data_cfg) -> CharVocab:
    """The character vocabulary of a non-English corpus: <root>/lang/chars.txt (one token a
    line, the blank first), written once from the training text."""
    path = Path(data_cfg.root) / "lang" / "chars.txt"
    if not path.is_file():
        def write(text: Path) -> None:
            tokens = character_inventory(text)
            atomic_write_text(path, "".join(t + "\n" for t in tokens))
            log.info("%d characters of the %s training text -> %s", len(tokens) - 1,
                     data_cfg.language, path)
        with_training_text(data_cfg, path, write)
    return CharVocab(path.read_text(encoding="utf-8").split("\n")[:-1])


def make_vocab(units: str = "char", tokens: list[str] | None = None, phone_set: int = 39,
               model_proto: bytes | None = None):
    """The vocabulary for data.units ("char", "phone", "bpe" or "unigram"); tokens: a saved
    token list; model_proto: the sentencepiece model (bytes), needed for bpe/unigram."""
    if units == "char":
        return CharVocab(list(tokens) if tokens else None)
    if units == "phone":
        return PhoneVocab(tokens) if tokens else PhoneVocab.timit(phone_set)
    if units == "phone_lexicon":
        raise ValueError("data.units=phone_lexicon needs its pronunciation lexicon "
                         "(asr.text.units.build_vocab(cfg.data) builds or loads it)")
    if units in SUBWORD_UNITS:
        if model_proto is None:
            raise ValueError(f"data.units={units} needs its sentencepiece model "
                             "(asr.text.units.build_vocab(cfg.data) trains or loads it)")
        vocab = SentencePieceVocab(model_proto, units)
        if tokens and list(tokens) != vocab.tokens:
            raise ValueError("the token list does not match the sentencepiece model's pieces")
        return vocab
    raise ValueError(f"data.units must be one of {', '.join(UNITS)}, not {units!r}")


def vocab_from_tokens(tokens: list[str], model_proto: bytes | None = None):
    """CharVocab or PhoneVocab from a checkpoint's token list (phones: a token of 2+ characters
    and no space token); a SentencePieceVocab when the sentencepiece model_proto is given."""
    if model_proto is not None:
        return make_vocab("bpe", tokens, model_proto=model_proto)
    tokens = list(tokens)
    if " " not in tokens and any(len(t) > 1 for t in tokens[1:]):
        return PhoneVocab(tokens)
    return CharVocab(tokens)


def units_model_tensor(vocab):
    """A subword vocabulary's sentencepiece model as a uint8 tensor (None for other units)."""
    import torch
    proto = getattr(vocab, "model_proto", None)
    if proto is None:
        return None
    return torch.frombuffer(bytearray(proto), dtype=torch.uint8).clone()


def ctc_min_frames(ids: list[int]) -> int:
    """Frames CTC needs to emit ids: one per label plus a blank between each repeated pair."""
    return len(ids) + sum(1 for a, b in zip(ids, ids[1:]) if a == b)
