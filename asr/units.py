"""Output units of a CTC model: characters (asr.text.CharVocab) or phones (PhoneVocab).

A phone transcript is a string of space-separated phone tokens ("sil sh iy hh ae d sil"); its
tokens are the labels, so WER computed over such strings is the phone error rate (PER).

TIMIT phone sets (Lee & Hon 1989, "Speaker-independent phone recognition using hidden Markov
models"; the same table as Kaldi's egs/timit/s5/conf/phones.60-48-39.map): the 61 phones of
the transcriptions are trained as 61, 48 or 39 classes and always scored folded to 39; the
glottal stop "q" is deleted.

    vocab = make_vocab("phone", phone_set=39)      # or make_vocab("char")
    vocab.encode("sil sh iy sil") -> [ids]; vocab.decode(ids) -> "sil sh iy sil"
    vocab_from_tokens(checkpoint["vocab"])         # the right class back from a token list
"""

from __future__ import annotations

from .text import CharVocab

BLANK = "<blank>"

# (TIMIT phone, 48-phone class, 39-phone class); None: deleted.
TIMIT_PHONE_MAP: tuple[tuple[str, str | None, str | None], ...] = (
    ("aa", "aa", "aa"), ("ae", "ae", "ae"), ("ah", "ah", "ah"), ("ao", "ao", "aa"),
    ("aw", "aw", "aw"), ("ax", "ax", "ah"), ("ax-h", "ax", "ah"), ("axr", "er", "er"),
    ("ay", "ay", "ay"), ("b", "b", "b"), ("bcl", "vcl", "sil"), ("ch", "ch", "ch"),
    ("d", "d", "d"), ("dcl", "vcl", "sil"), ("dh", "dh", "dh"), ("dx", "dx", "dx"),
    ("eh", "eh", "eh"), ("el", "el", "l"), ("em", "m", "m"), ("en", "en", "n"),
    ("eng", "ng", "ng"), ("epi", "epi", "sil"), ("er", "er", "er"), ("ey", "ey", "ey"),
    ("f", "f", "f"), ("g", "g", "g"), ("gcl", "vcl", "sil"), ("h#", "sil", "sil"),
    ("hh", "hh", "hh"), ("hv", "hh", "hh"), ("ih", "ih", "ih"), ("ix", "ix", "ih"),
    ("iy", "iy", "iy"), ("jh", "jh", "jh"), ("k", "k", "k"), ("kcl", "cl", "sil"),
    ("l", "l", "l"), ("m", "m", "m"), ("n", "n", "n"), ("ng", "ng", "ng"), ("nx", "n", "n"),
    ("ow", "ow", "ow"), ("oy", "oy", "oy"), ("p", "p", "p"), ("pau", "sil", "sil"),
    ("pcl", "cl", "sil"), ("q", None, None), ("r", "r", "r"), ("s", "s", "s"),
    ("sh", "sh", "sh"), ("t", "t", "t"), ("tcl", "cl", "sil"), ("th", "th", "th"),
    ("uh", "uh", "uh"), ("uw", "uw", "uw"), ("ux", "uw", "uw"), ("v", "v", "v"),
    ("w", "w", "w"), ("y", "y", "y"), ("z", "z", "z"), ("zh", "zh", "sh"),
)

TIMIT_61 = tuple(p for p, _, _ in TIMIT_PHONE_MAP)
TIMIT_48 = tuple(sorted({p48 for _, p48, _ in TIMIT_PHONE_MAP if p48}))
TIMIT_39 = tuple(sorted({p39 for _, _, p39 in TIMIT_PHONE_MAP if p39}))
PHONE_SETS = {61: TIMIT_61, 48: TIMIT_48, 39: TIMIT_39}

_TO_48 = {p: p48 for p, p48, _ in TIMIT_PHONE_MAP}
# Any 61- or 48-set phone (and a 39 one) -> its 39 class; the 48-only names cl/vcl/sil -> sil.
_TO_39 = {p: p39 for p, _, p39 in TIMIT_PHONE_MAP} | {"cl": "sil", "vcl": "sil", "sil": "sil"}


def fold_phones(phones: list[str] | str, phone_set: int = 39) -> list[str]:
    """Map TIMIT phones (61, 48 or 39 set) to the 48 or 39 set ("q" is deleted); 61 = as is
    (apart from q). Raises ValueError naming an unknown phone."""
    if isinstance(phones, str):
        phones = phones.split()
    if phone_set not in PHONE_SETS:
        raise ValueError(f"phone_set must be 39, 48 or 61, not {phone_set}")
    table = {61: {p: (None if p == "q" else p) for p in TIMIT_61}, 48: _TO_48, 39: _TO_39}[phone_set]
    out = []
    for p in phones:
        p = p.lower()
        if p not in table:
            raise ValueError(f"unknown TIMIT phone {p!r}")
        if table[p] is not None:
            out.append(table[p])
    return out


def fold_to_39(text: str) -> str:
    """A phone transcript (61, 48 or 39 set) folded to the 39 scoring classes."""
    return " ".join(fold_phones(text.split(), 39))


class PhoneVocab:
    """Phone tokens (space-separated in transcripts); index 0 is the CTC blank.

    The interface of asr.text.CharVocab: tokens, blank, __len__, encode, decode, covers.
    """

    BLANK = BLANK

    def __init__(self, tokens: list[str] | None = None):
        self.tokens = list(tokens) if tokens else [BLANK, *TIMIT_39]
        if self.tokens[0] != BLANK:
            raise ValueError("the first token of a CTC vocabulary must be the blank")
        bad = [t for t in self.tokens[1:] if not t or any(c.isspace() for c in t) or t == BLANK]
        if bad or len(set(self.tokens)) != len(self.tokens):
            raise ValueError(f"phone tokens must be unique and without spaces: {bad or self.tokens}")
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def timit(cls, phone_set: int = 39) -> "PhoneVocab":
        if phone_set not in PHONE_SETS:
            raise ValueError(f"phone_set must be 39, 48 or 61, not {phone_set}")
        return cls([BLANK, *PHONE_SETS[phone_set]])

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def blank(self) -> int:
        return 0

    def unknown(self, text: str) -> list[str]:
        return sorted({t for t in text.split() if t not in self.index or t == BLANK})

    def encode(self, text: str) -> list[int]:
        """Token ids of a space-separated phone string; raises ValueError naming unknown phones."""
        unknown = self.unknown(text)
        if unknown:
            raise ValueError(f"phones outside the vocabulary: {unknown!r}")
        return [self.index[t] for t in text.split()]

    def covers(self, text: str) -> bool:
        return not self.unknown(text)

    def decode(self, ids) -> str:
        return " ".join(self.tokens[i] for i in ids if i != self.blank)


def make_vocab(units: str = "char", tokens: list[str] | None = None, phone_set: int = 39):
    """The vocabulary for data.units ("char" or "phone"); tokens: a saved token list."""
    if units == "char":
        return CharVocab(list(tokens) if tokens else None)
    if units == "phone":
        return PhoneVocab(tokens) if tokens else PhoneVocab.timit(phone_set)
    raise ValueError(f"data.units must be 'char' or 'phone', not {units!r}")


def vocab_from_tokens(tokens: list[str]):
    """CharVocab or PhoneVocab from a checkpoint's token list (phones: a token of 2+ characters
    and no space token)."""
    tokens = list(tokens)
    if " " not in tokens and any(len(t) > 1 for t in tokens[1:]):
        return PhoneVocab(tokens)
    return CharVocab(tokens)


def ctc_min_frames(ids: list[int]) -> int:
    """Frames CTC needs to emit ids: one per label plus a blank between each repeated pair."""
    return len(ids) + sum(1 for a, b in zip(ids, ids[1:]) if a == b)


def units_name(units: str) -> str:
    """What WER over these units is called: WER for characters' words, PER for phones."""
    return "PER" if units == "phone" else "WER"
