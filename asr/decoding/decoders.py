"""Decoding: greedy (best path) and beam search with or without a KenLM model, by name.

``DECODERS`` is the one registry of decoders, by name. Every entry is a :class:`Decoder`
(:class:`GreedyDecoder`, :class:`BeamDecoder`, :class:`FunctionDecoder`) with one calling
shape, on a batch of network outputs::

    DECODERS[name].decode(log_probs, lengths, vocab, cfg=None, frame_s=0.04) -> [hyp, ...]

log_probs (B, T, V), lengths (B,), the model's vocabulary, a DecodeConfig (None = defaults)
and the seconds per output frame; one hypothesis dict per utterance: ``{"text", "words":
[{"word", "start", "end", "conf"}], "score"?, "nbest"?}`` (times in seconds from the start of
the utterance). Calling the entry (``DECODERS[name](log_probs, ...)``) is the same.

Everything that decodes goes through that shape: :func:`decode_store` (``asr decode``,
``asr benchmark``: the loop over a feature store's batches, outside the decoders), Transcriber
(``asr transcribe``, ``asr.load``: the windows of a recording) and ``asr tune-lm`` (precomputed
outputs).

Names: ``greedy``, ``beam`` (lexicon-free unless ``lexicon=on``, no LM) and ``beam_lm``
(lexicon + word KenLM model unless ``lexicon=off``, which uses the character LM). Other
decoders join with ``@register_decoder(name)`` on a function of the same shape
``fn(log_probs, lengths, vocab, cfg, frame_s) -> [{"text", "words"}, ...]``: it is wrapped into
a Decoder, so all of the above run it, and ``decode.decoder`` takes its name.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import torch

from asr.config import DecodeConfig, DecoderName, choices
from asr.config.types import DECODER_NAMES
from asr.decoding.align import greedy_path, path_words
from asr.decoding.lm import is_phone_lexicon
from asr.model import frame_seconds
from asr.text.vocab import Vocab
from asr.utils import atomic_open

log = logging.getLogger(__name__)


def greedy_ids(log_probs: torch.Tensor, length: int, blank: int = 0) -> list[int]:
    """Best path: argmax per frame, merge repeats, drop blanks."""
    best = log_probs[:length].argmax(dim=-1)
    best = torch.unique_consecutive(best)
    return [int(i) for i in best if i != blank]


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, vocab: Vocab) -> list[str]:
    """Batch (B, T, V) log-probabilities -> texts."""
    return [" ".join(vocab.decode(greedy_ids(lp, int(n), vocab.blank)).split())
            for lp, n in zip(log_probs, lengths)]


def greedy_hyps(log_probs: torch.Tensor, lengths: torch.Tensor, vocab: Vocab,
                cfg: DecodeConfig | None = None, frame_s: float = 0.04) -> list[dict]:
    """Greedy hypotheses with word times/confidences; cfg is unused (uniform signature)."""
    lp = log_probs.detach().float().cpu()
    out = []
    for b in range(lp.shape[0]):
        n = int(lengths[b])
        words = path_words(greedy_path(lp[b], n), lp[b, :n], vocab, frame_s)
        out.append({"text": " ".join(w["word"] for w in words), "words": words})
    return out


# ---------------------------------------------------------------- beam search configuration

def use_lexicon(cfg: DecodeConfig) -> bool:
    """Whether the search is lexicon-constrained: cfg.lexicon on/off, or auto (= beam_lm)."""
    if cfg.lexicon == "auto":
        return cfg.decoder == "beam_lm"
    return cfg.lexicon == "on"


def resolve_lm_paths(cfg: DecodeConfig, lm_dir: str | Path | None) -> DecodeConfig:
    """A copy of cfg with empty lm_path / lexicon_path filled from the LM folder lm_dir:
    lexicon.txt, and lm.bin (char.bin for a lexicon-free beam_lm search)."""
    if lm_dir is None:
        return cfg
    lm_dir = Path(lm_dir)
    lm_path = cfg.lm_path or str(lm_dir / ("lm.bin" if use_lexicon(cfg) else "char.bin"))
    lexicon_path = cfg.lexicon_path or str(lm_dir / "lexicon.txt")
    return dataclasses.replace(cfg, lm_path=lm_path, lexicon_path=lexicon_path)


def _beam_files(cfg: DecodeConfig) -> tuple[str | None, str | None]:
    """(lm, lexicon) paths the search needs for cfg, checked to exist."""
    lexicon = cfg.lexicon_path if use_lexicon(cfg) else None
    lm = cfg.lm_path if cfg.decoder == "beam_lm" else None
    for what, path in (("lexicon", lexicon), ("language model", lm)):
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(
                f"{what} {path or '(decode.lm_path / lexicon_path not set)'} not found: build it "
                "with `make lm` (asr lm build), or set decode.lm_path / decode.lexicon_path")
    return lm, lexicon


_CACHE: OrderedDict = OrderedDict()


def beam_search_for(vocab: Vocab, cfg: DecodeConfig):
    """The BeamSearch for (vocab, cfg), built once and cached (loading an LM and building the
    lexicon trie take ~1 s)."""
    from asr.decoding.beam import BeamSearch, beam_options, read_hotwords
    lm, lexicon = _beam_files(cfg)
    options = beam_options(cfg)
    hotwords = read_hotwords(cfg.hotwords, cfg.hotwords_file or None)
    key = (tuple(vocab.tokens), lm, lexicon, options, tuple(hotwords), cfg.hotword_weight)
    if key not in _CACHE:
        _CACHE[key] = BeamSearch(vocab, lm=lm, lexicon=lexicon, options=options,
                                 hotwords=hotwords, hotword_weight=cfg.hotword_weight)
        while len(_CACHE) > 2:
            _CACHE.popitem(last=False)
    return _CACHE[key]


# ---------------------------------------------------------------- the decoders, by name

class Decoder:
    """A named decoder of CTC network outputs; subclasses implement decode() on a batch:
    decode(log_probs (B, T, V), lengths (B,), vocab, cfg: DecodeConfig | None, frame_s) -> one
    hypothesis dict per utterance. A whole feature store is decode_store's loop, not theirs."""

    name: str = ""

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor, vocab: Vocab,
               cfg: DecodeConfig | None = None, frame_s: float = 0.04) -> list[dict]:
        raise NotImplementedError

    def __call__(self, *args, **options) -> list[dict]:
        """decode(): a registry entry called directly decodes a batch of log-probs."""
        return self.decode(*args, **options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class GreedyDecoder(Decoder):
    """Best path (argmax per frame), with word times and confidences."""

    name = "greedy"

    def decode(self, log_probs, lengths, vocab, cfg=None, frame_s: float = 0.04) -> list[dict]:
        if is_phone_lexicon(vocab):  # its best path is phones: words need the lexicon search
            raise ValueError("greedy decoding of a phone_lexicon model gives phones, not words: "
                             "decode with beam_lm (asr lm build spells the LM's lexicon in phones)")
        return greedy_hyps(log_probs, lengths, vocab, cfg, frame_s)


class BeamDecoder(Decoder):
    """Flashlight beam search as configured by a DecodeConfig (decoder = this one's name)."""

    def __init__(self, name: str):
        self.name = name

    def decode(self, log_probs, lengths, vocab, cfg=None, frame_s: float = 0.04) -> list[dict]:
        cfg = dataclasses.replace(cfg or DecodeConfig(), decoder=self.name)
        return beam_search_for(vocab, cfg)(log_probs, lengths, frame_s)


class FunctionDecoder(Decoder):
    """A decoder registered with register_decoder: fn(log_probs, lengths, vocab, cfg, frame_s)."""

    def __init__(self, name: str, fn: Callable):
        self.name, self.fn = name, fn

    def decode(self, log_probs, lengths, vocab, cfg=None, frame_s: float = 0.04) -> list[dict]:
        return self.fn(log_probs, lengths, vocab, cfg or DecodeConfig(decoder=self.name), frame_s)


DECODERS: dict[str, Decoder] = {"greedy": GreedyDecoder(), "beam": BeamDecoder("beam"),
                                "beam_lm": BeamDecoder("beam_lm")}
BUILTIN = choices(DecoderName)
assert tuple(DECODERS) == BUILTIN  # decode.decoder's choices are these


def register_decoder(name: str):
    """Decorator: make `fn(log_probs, lengths, vocab, cfg, frame_s)` decoder `name`.

    fn gets a batch of network outputs (B, T, V) log-probabilities, their lengths, the model's
    vocabulary, the DecodeConfig (decoder = name) and the seconds per output frame; it returns
    one ``{"text", "words": [{"word", "start", "end", "conf"}]}`` per utterance. The function
    is returned unchanged; DECODERS[name] is its Decoder."""
    def wrap(fn: Callable) -> Callable:
        if name in BUILTIN:
            raise ValueError(f"register_decoder({name!r}): the built-in decoder {name!r} cannot be "
                             "replaced; register under another name")
        try:
            inspect.signature(fn).bind(None, None, None, None, None)
        except TypeError:
            raise ValueError(f"register_decoder({name!r}): {fn.__name__} must take "
                             "fn(log_probs, lengths, vocab, cfg, frame_s) (the batch form; "
                             "fn(model, vocab, store, device) is no longer taken)") from None
        DECODERS[name] = FunctionDecoder(name, fn)
        if name not in DECODER_NAMES:
            DECODER_NAMES.append(name)  # decode.decoder takes it from now on
        return fn
    return wrap


def unregister_decoder(name: str) -> None:
    """Remove a decoder added by register_decoder (decode.decoder no longer takes its name)."""
    if name in BUILTIN:
        raise ValueError(f"the built-in decoder {name!r} cannot be removed")
    DECODERS.pop(name, None)
    if name in DECODER_NAMES:
        DECODER_NAMES.remove(name)


def get_decoder(name: str) -> Decoder:
    """DECODERS[name], or ValueError naming the available decoders."""
    if name not in DECODERS:
        raise ValueError(f"unknown decoder {name!r} (available: {', '.join(sorted(DECODERS))})")
    return DECODERS[name]


def check_decoder_options(name: str, options: dict) -> None:
    """ValueError unless decode_store with decoder `name` takes these options (its
    batch_frames, and DecodeConfig fields)."""
    get_decoder(name)
    known = {"batch_frames"} | {f.name for f in dataclasses.fields(DecodeConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"decoder {name!r} does not take options {unknown}")


# ---------------------------------------------------------------- whole feature stores

def store_hop_ms(store) -> float:
    """Feature hop (ms) of a FeatureStore (meta.json) or an OnTheFlyStore (its extractor)."""
    meta = getattr(store, "meta", None)
    if meta and "features" in meta:
        return float(meta["features"].get("hop_ms", 10.0))
    extractor = getattr(store, "extractor", None)
    return float(extractor.cfg.hop_ms) if extractor is not None else 10.0


def store_batches(store, batch_frames: int):
    """Store indices in shortest-first batches of at most batch_frames padded frames."""
    order = sorted(range(len(store)), key=lambda i: store.entries[i]["frames"])
    batch: list[int] = []
    for i in order:
        if batch and store.entries[i]["frames"] * (len(batch) + 1) > batch_frames:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


@torch.no_grad()
def forward_batch(model, feats: list[torch.Tensor], device: torch.device):
    """Run the model on a list of (T, F) feature tensors; CPU (log_probs, lengths)."""
    lengths = torch.tensor([len(f) for f in feats])
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True).to(device)
    log_probs, out_lens = model(x, lengths.to(device))
    return log_probs.float().cpu(), out_lens.cpu()


@torch.no_grad()
def decode_store(model, vocab: Vocab, store, device: torch.device, cfg: DecodeConfig | None = None,
                 batch_frames: int = 20000, **options) -> list[dict]:
    """Decode every utterance of a feature store; [{"id", "text", "words", ...}] in store order.

    model: a CTCModel (eval mode is set). vocab: its vocabulary. store: FeatureStore or
    OnTheFlyStore. device: where the model runs. cfg: the settings, cfg.decoder naming a
    decoder of DECODERS (built in or registered); None = DecodeConfig(), greedy. options
    override its fields (decoder="beam", beam_size=8, ...). batch_frames: padded frames per
    forward batch. LM and lexicon paths are the settings' own (asr.source resolves a run's).
    """
    model.eval()
    cfg = dataclasses.replace(cfg or DecodeConfig(), **options)
    decode = get_decoder(cfg.decoder).decode
    frame_s = frame_seconds(store_hop_ms(store), model.cfg.subsample)
    hyps: dict[int, dict] = {}
    for batch in store_batches(store, batch_frames):
        feats = [torch.from_numpy(store.features(i)) for i in batch]
        log_probs, lengths = forward_batch(model, feats, device)
        for i, h in zip(batch, decode(log_probs, lengths, vocab, cfg, frame_s=frame_s)):
            hyps[i] = h
    return [{"id": store.entries[i]["id"], **hyps[i]} for i in range(len(store))]


def write_hyps(path: str | Path, hyps: list[dict]) -> None:
    """Write hypotheses as JSON Lines atomically."""
    with atomic_open(path) as f:
        for h in hyps:
            f.write(json.dumps(h, ensure_ascii=False) + "\n")
