"""The vocabulary of a config or a checkpoint, whatever its units: characters, TIMIT phones,
sentencepiece subwords (asr.text.vocab) or phones through a pronunciation lexicon
(asr.text.lexicon), and what a checkpoint stores to rebuild it.

    vocab = build_vocab(cfg.data)                  # any units; trains a subword model once
    ckpt.update(units_state(vocab))                # the subword model or lexicon, as tensors
    vocab_from_checkpoint(checkpoint)              # any units back from a checkpoint
"""

from __future__ import annotations

import logging

from asr.config import SUBWORD_UNITS
from asr.text.lexicon import LexiconVocab, lexicon_text, lexicon_vocab, parse_lexicon
from asr.text.normalize import primary_language
from asr.text.vocab import (SentencePieceVocab, with_training_text, make_vocab, script_char_vocab,
                            subword_model_path, train_sentencepiece, units_model_tensor,
                            vocab_from_tokens)

log = logging.getLogger(__name__)


def build_vocab(data_cfg):
    """The vocabulary for a DataConfig: make_vocab for char/phone (characters outside English:
    those of the training text, script_char_vocab); for bpe/unigram the sentencepiece model
    <data.root>/lang/<units>_<units_size>.model, trained first (once, from
    manifests/train_text.txt, else the train_split manifest's texts) when it does not exist."""
    units = data_cfg.units
    if units == "char" and primary_language(getattr(data_cfg, "language", "en")) != "en":
        return script_char_vocab(data_cfg)
    if units == "phone_lexicon":
        return lexicon_vocab(data_cfg)
    if units not in SUBWORD_UNITS:
        return make_vocab(units, phone_set=data_cfg.phone_set)
    path = subword_model_path(data_cfg)
    if not path.is_file():
        with_training_text(data_cfg, path,
                            lambda text: train_sentencepiece(text, path, units, data_cfg.units_size))
        log.info("%s model of %d pieces trained -> %s", units, data_cfg.units_size, path)
    return SentencePieceVocab.from_file(path, units)


def units_state(vocab) -> dict:
    """Checkpoint entries for the units beyond the token list: {"units_model": uint8 tensor}
    for sentencepiece units, {"units_lexicon": uint8 tensor of the lexicon file's text} for
    phone_lexicon units (torch.load(weights_only=True) loads tensors), {} otherwise."""
    import torch
    if isinstance(vocab, LexiconVocab):
        data = bytearray(lexicon_text(vocab.lexicon).encode("utf-8"))
        return {"units_lexicon": torch.frombuffer(data, dtype=torch.uint8).clone()}
    t = units_model_tensor(vocab)
    return {} if t is None else {"units_model": t}


def vocab_from_checkpoint(ckpt: dict):
    """The vocabulary of a checkpoint dict: its token list, and its sentencepiece model when it
    carries one (``units_model``)."""
    if ckpt.get("units_lexicon") is not None:
        text = ckpt["units_lexicon"].cpu().numpy().tobytes().decode("utf-8")
        return LexiconVocab(parse_lexicon(text, "the checkpoint's lexicon"), ckpt["vocab"])
    proto = ckpt.get("units_model")
    if proto is None:
        return vocab_from_tokens(ckpt["vocab"])
    if hasattr(proto, "numpy"):
        proto = proto.cpu().numpy().tobytes()
    units = (ckpt.get("config") or {}).get("data", {}).get("units", "bpe")
    vocab = vocab_from_tokens(ckpt["vocab"], bytes(proto))
    vocab.kind = units if units in SUBWORD_UNITS else vocab.kind
    return vocab
