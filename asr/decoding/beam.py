"""CTC beam search with torchaudio's flashlight decoder: lexicon-free or lexicon-constrained,
with or without a KenLM n-gram model, N-best, and hotword (context) biasing.

The model's tokens map one to one onto the decoder's: index 0 "<blank>" is the CTC blank and the
word separator " " becomes the decoder's silence/word-boundary token "|". A lexicon spells every
word it allows as its characters followed by "|" (asr.decoding.lm.write_lexicon); since the model emits
no space after the last word of an utterance, a lexicon search gets one extra frame that can
only be "|" (a word boundary at the end), which changes no time and no acoustic score.

Search modes (``BeamSearch(vocab, ...)``):

* lexicon-free, no LM: prefix beam search over characters (``decoder=beam``);
* lexicon-free + character LM: a KenLM model over tokens ("a b | c d"), built by
  ``asr lm build`` when ``lm.char_order > 0``;
* lexicon, no LM: only lexicon words can be output;
* lexicon + word LM: the usual beam+LM search (``decoder=beam_lm``).

Hotwords: flashlight has no native biasing, so :class:`ContextBiasLM` wraps the (optional) KenLM
model as a Python ``CTCDecoderLM`` and adds ``weight`` for every unit (word with a lexicon,
character without) that extends a hotword phrase, taking the bonus back if the phrase is left
unfinished (the usual prefix-tree context graph with failure refunds). The lexicon search smears
these bonuses into its look-ahead, so a biased word is favoured before it is complete.

Subword (sentencepiece) vocabularies: the tokens are the pieces as they are; a word starts at a
piece beginning with "\u2581", so there is no separator token. A lexicon spells each word in the
pieces the model cuts it into (``hello<TAB>\u2581he llo``, asr.decoding.lm.write_lexicon) and the word is
complete when its last piece is read; the decoder's silence token is then one the model never
emits, sentencepiece's "<unk>" piece, and no extra final frame is needed. Lexicon-free search
over pieces works as over characters, optionally with a KenLM model over pieces (lm.char_order).
A lexicon whose spellings use tokens the model does not have (written for other units or
another sentencepiece model) is respelled in the model's tokens, with a warning.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path

import torch
from flashlight.lib.text.dictionary import Dictionary, create_word_dict, load_words
from torchaudio.models.decoder import CTCDecoderLM, CTCDecoderLMState, ctc_decoder

from asr.config import DecodeConfig
from asr.decoding.align import lexicon_path_words, path_words
from asr.decoding.lm import SIL, is_phone_lexicon, is_subword, read_lexicon, spell
from asr.text.vocab import Vocab

log = logging.getLogger(__name__)

try:
    from flashlight.lib.text.decoder.kenlm import KenLM
except ImportError:  # older flashlight-text layouts
    from flashlight.lib.text.decoder import KenLM

UNK = "<unk>"


# The search settings of a DecodeConfig: the same names, types, defaults and meaning (see its
# docstring), derived from it rather than restated, as a frozen (hashable, cacheable) record.
SEARCH_FIELDS = ("beam_size", "beam_size_token", "beam_threshold", "lm_weight", "word_score",
                 "unk_score", "sil_score", "log_add", "nbest")
BeamOptions = dataclasses.make_dataclass(
    "BeamOptions", [(f.name, f.type, dataclasses.field(default=f.default))
                    for f in dataclasses.fields(DecodeConfig) if f.name in SEARCH_FIELDS],
    frozen=True)


def beam_options(cfg: DecodeConfig) -> BeamOptions:
    """The search settings of a DecodeConfig."""
    return BeamOptions(**{name: getattr(cfg, name) for name in SEARCH_FIELDS})


def decoder_tokens(vocab: Vocab) -> list[str]:
    """The model's tokens with the word separator " " renamed to the decoder's "|" (subword
    pieces have no " " and stay as they are)."""
    return [SIL if t == " " else t for t in vocab.tokens]


def silence_token(vocab) -> str:
    """The decoder's silence token: "|" (the model's " ") for characters; for subword units,
    which have no separator, sentencepiece's "<unk>" piece, which the model never emits."""
    if is_subword(vocab):
        return vocab.tokens[vocab.unk + 1]
    if is_phone_lexicon(vocab):
        return vocab.SIL_TOKEN
    return SIL


def read_hotwords(phrases=(), path: str | Path | None = None) -> list[str]:
    """Hotword phrases from a list and/or a file (one phrase a line, '#' comments), normalised."""
    from asr.text.normalize import normalize_text
    items = list(phrases or [])
    if path:
        with open(path, encoding="utf-8") as f:
            items += [line.split("#", 1)[0] for line in f]
    out = [normalize_text(p) for p in items]
    return list(dict.fromkeys(p for p in out if p))


class PhraseTrie:
    """Prefix tree over unit-index sequences (the hotword phrases), for ContextBiasLM."""

    def __init__(self, phrases: list[list[int]]):
        self.children: list[dict[int, int]] = [{}]
        self.final: list[bool] = [False]
        for units in phrases:
            node = 0
            for u in units:
                if u not in self.children[node]:
                    self.children[node][u] = len(self.children)
                    self.children.append({})
                    self.final.append(False)
                node = self.children[node][u]
            self.final[node] = True

    def step(self, node: int, unit: int, weight: float, pending: float) -> tuple[int, float, float]:
        """Advance by one unit: (next node, score change, bonus still pending).

        Extending a phrase earns `weight` (pending until the phrase completes); leaving one
        refunds what is pending and tries to start a new phrase at this unit.
        """
        nxt = self.children[node].get(unit)
        delta = 0.0
        if nxt is None:
            delta, pending = -pending, 0.0
            nxt = self.children[0].get(unit)
            if nxt is None:
                return 0, delta, 0.0
        delta += weight
        pending += weight
        if self.final[nxt]:
            pending = 0.0  # a completed phrase keeps its bonus
            if not self.children[nxt]:
                nxt = 0
        return nxt, delta, pending


class ContextBiasLM(CTCDecoderLM):
    """A flashlight LM that adds hotword bonuses to an optional inner KenLM model.

    inner: a flashlight LM (KenLM) scoring the same unit indices, or None (no LM).
    trie: PhraseTrie of hotword unit sequences. weight: bonus per matching unit, in decoder
    score units. lm_weight: the decoder's LM weight; bonuses are divided by it so that `weight`
    means the same whatever the LM weight.
    """

    def __init__(self, inner, trie: PhraseTrie, weight: float, lm_weight: float = 1.0):
        CTCDecoderLM.__init__(self)
        self.inner, self.trie = inner, trie
        self.scale = weight / (lm_weight or 1.0)
        self.info: dict = {}

    def start(self, start_with_nothing: bool = False):
        self.info.clear()  # a new utterance: earlier states are dead
        state = CTCDecoderLMState()
        inner = self.inner.start(start_with_nothing) if self.inner is not None else None
        self.info[state] = (inner, 0, 0.0, None)
        return state

    def score(self, state, usr_token_idx: int):
        child = state.child(usr_token_idx)
        cached = self.info.get(child)
        if cached is None:
            inner, node, pending, _ = self.info[state]
            lm_score = 0.0
            if self.inner is not None:
                inner, lm_score = self.inner.score(inner, usr_token_idx)
            node, delta, pending = self.trie.step(node, usr_token_idx, self.scale, pending)
            cached = (inner, node, pending, lm_score + delta)
            self.info[child] = cached
        return child, cached[3]

    def finish(self, state):
        inner, _, pending, _ = self.info[state]
        lm_score = self.inner.finish(inner)[1] if self.inner is not None else 0.0
        return state, lm_score - pending


class BeamSearch:
    """A configured flashlight CTC beam-search decoder for one vocabulary.

    vocab: the model's CharVocab or SentencePieceVocab. lm: KenLM binary/ARPA path (word LM
    with a lexicon, character (or piece) LM without), or None. lexicon: lexicon file path
    (word<TAB>spelling), or None for lexicon-free search. options: BeamOptions. hotwords: phrases to favour;
    hotword_weight: bonus per matching unit (word or character).
    Call it on (B, T, V) log-probabilities and lengths; see __call__.
    """

    def __init__(self, vocab: Vocab, lm: str | Path | None = None,
                 lexicon: str | Path | None = None, options: BeamOptions | None = None,
                 hotwords: list[str] | None = None, hotword_weight: float = 0.0):
        self.subword, self.phones = is_subword(vocab), is_phone_lexicon(vocab)
        self.unbounded = self.subword or self.phones  # no word-boundary token is ever emitted
        if " " not in vocab.index and not self.unbounded:
            raise ValueError("beam search needs a character vocabulary with the word separator ' ', "
                             "subword units or phone_lexicon units (use decode.decoder=greedy for "
                             "TIMIT phone models)")
        if self.phones and not lexicon:
            raise ValueError("a phone_lexicon model gives words only through a lexicon: decode with "
                             "decoder=beam_lm (asr lm build spells its lexicon in phones), or beam "
                             "with lexicon=on and a lexicon_path")
        self.vocab, self.options = vocab, options or BeamOptions()
        self.tokens = decoder_tokens(vocab)
        self.sil = silence_token(vocab)
        self.hotwords = [h for h in (hotwords or []) if vocab.covers(h)]
        self._tmp = None
        self.lexicon = self._lexicon_file(lexicon) if lexicon else None
        lm_obj = self._language_model(lm, hotword_weight)
        o = self.options
        lm_weight = o.lm_weight if lm else (1.0 if isinstance(lm_obj, ContextBiasLM) else 0.0)
        self.decoder = ctc_decoder(
            lexicon=self.lexicon, tokens=self.tokens, lm=lm_obj, nbest=o.nbest,
            beam_size=o.beam_size, beam_size_token=o.beam_size_token or None,
            beam_threshold=o.beam_threshold, lm_weight=lm_weight, word_score=o.word_score,
            unk_score=o.unk_score, sil_score=o.sil_score, log_add=o.log_add,
            blank_token=vocab.BLANK, sil_token=self.sil, unk_word=UNK)

    def _lexicon_file(self, lexicon: str | Path) -> str:
        """The lexicon path, or a temporary copy with the hotwords' missing words added and,
        when its spellings use tokens this model lacks (a lexicon for other units), every word
        respelled in this model's tokens."""
        entries = read_lexicon(lexicon)
        known = {w for w, _ in entries}
        tokens = set(self.tokens)
        foreign = any(t not in tokens for _, spelling in entries for t in spelling)
        extra = [w for h in self.hotwords for w in h.split() if w not in known]
        if not extra and not foreign:
            return str(lexicon)
        self._tmp = tempfile.TemporaryDirectory(prefix="asr-lexicon-")
        path = Path(self._tmp.name) / "lexicon.txt"
        if foreign:
            words = [w for w in dict.fromkeys(w for w, _ in entries) if self.vocab.covers(w)]
            log.warning("%s: spellings use tokens this model does not have (written for other "
                        "units?): %d words respelled in the model's tokens; rebuild it with "
                        "`asr lm build` for this recipe", lexicon, len(words))
            text = "".join(f"{w}\t{' '.join(spell(w, self.vocab))}\n" for w in words)
        else:
            text = Path(lexicon).read_text(encoding="utf-8")
        extra_lines = "".join(f"{w}\t{' '.join(spell(w, self.vocab))}\n" for w in dict.fromkeys(extra))
        path.write_text(text + extra_lines, encoding="utf-8")
        return str(path)

    def _word_dict(self):
        """The LM's index of each unit the search scores: the word dictionary ctc_decoder builds
        for a lexicon, or (lexicon-free) the tokens in token order, then <unk>.

        (ctc_decoder's own lexicon-free dictionary comes out of a hash map in another order, so
        a character KenLM given to it as a path would score the wrong characters.)
        """
        if self.lexicon:
            return create_word_dict(load_words(self.lexicon))
        d = Dictionary(self.tokens)
        if UNK not in self.tokens:  # a sentencepiece vocabulary has its own "<unk>" piece
            d.add_entry(UNK)
        return d

    def _language_model(self, lm, hotword_weight: float):
        """The LM object for ctc_decoder: KenLM, None, or a ContextBiasLM when biasing."""
        biased = bool(self.hotwords) and hotword_weight != 0
        if not lm and not biased:
            return None
        if self.lexicon and not biased:
            return str(lm)  # ctc_decoder loads it with the lexicon's own word dictionary
        word_dict = self._word_dict()
        inner = KenLM(str(lm), word_dict) if lm else None
        if not biased:
            return inner
        if self.lexicon:
            phrases = [[word_dict.get_index(w) for w in h.split()] for h in self.hotwords]
        else:
            phrases = [self._char_units(h) for h in self.hotwords]
        lm_weight = self.options.lm_weight if lm else 1.0
        return ContextBiasLM(inner, PhraseTrie(phrases), hotword_weight, lm_weight)

    def _char_units(self, phrase: str) -> list[int]:
        """Token indices of a phrase for lexicon-free biasing: 'ab cd' -> a b | c d (subword
        units: its pieces)."""
        if self.subword:
            return self.vocab.encode(phrase)
        return [self.tokens.index(SIL if c == " " else c) for c in phrase]

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor, frame_s: float = 0.04) -> list[dict]:
        """Decode a batch; one hypothesis dict per utterance.

        log_probs: (B, T, V) log-posteriors (any device/dtype; copied to CPU float32).
        lengths: (B,) valid frames. frame_s: seconds per frame (for word times, from 0).
        Returns [{"text", "words": [{"word","start","end","conf"}], "score", "nbest"?}].
        """
        lp = log_probs.detach().float().cpu().contiguous()
        out = []
        for b in range(lp.shape[0]):
            n = int(lengths[b])
            emissions = lp[b, :n].contiguous()
            padded = self._with_final_boundary(emissions)
            results = self.decoder.decoder.decode(padded.data_ptr(), len(padded), lp.shape[2])
            out.append(self._hypothesis(results[: self.options.nbest], emissions, frame_s, 0.0))
        return out

    def _with_final_boundary(self, emissions: torch.Tensor) -> torch.Tensor:
        """With a lexicon: emissions plus one frame where only "|" is possible (log-prob 0).
        (Subword units need none: a word is complete at its last piece.)"""
        if not self.lexicon or self.unbounded:
            return emissions
        final = torch.full((1, emissions.shape[1]), -1e4)
        final[0, self.tokens.index(SIL)] = 0.0
        return torch.cat([emissions, final]).contiguous()

    def _hypothesis(self, results, emissions, frame_s: float, offset_s: float) -> dict:
        if not results:
            return {"text": "", "words": [], "score": float("-inf")}
        best = self._one(results[0], emissions, frame_s, offset_s)
        if self.options.nbest > 1:
            best["nbest"] = [{"text": self._one(r, emissions, frame_s, offset_s)["text"],
                              "score": round(r.score, 4)} for r in results]
        return best

    def _one(self, result, emissions, frame_s: float, offset_s: float) -> dict:
        """One flashlight result as {"text", "words", "score"} (its path gives the times)."""
        path = [t if t >= 0 else self.vocab.blank for t in list(result.tokens)[1:len(emissions) + 1]]
        if self.unbounded:  # the silence token ("<unk>", "<sil>") between words is no unit of a word
            sil = self.tokens.index(self.sil)
            path = [self.vocab.blank if t == sil else t for t in path]
        if self.phones:  # word boundaries: where the search emitted each word
            ends = list(result.words)[1:len(emissions) + 1]
            words = lexicon_path_words(path, ends, self.decoder.word_dict, emissions, self.vocab,
                                       frame_s, offset_s)
            return {"text": " ".join(w["word"] for w in words), "words": words,
                    "score": round(result.score, 4)}
        words = path_words(path, emissions, self.vocab, frame_s, offset_s)
        if self.lexicon:
            words = self._lexicon_words(words, result)
        return {"text": " ".join(w["word"] for w in words), "words": words,
                "score": round(result.score, 4)}

    def _lexicon_words(self, words: list[dict], result) -> list[dict]:
        """Keep the path's words that the lexicon search emitted (each ends in "|"; a trailing
        unfinished spelling is dropped), named as the decoder named them."""
        emitted = [self.decoder.word_dict.get_entry(x) for x in result.words if x >= 0]
        words = words[:len(emitted)]
        for w, name in zip(words, emitted):
            if name != UNK:
                w["word"] = name
        return words
