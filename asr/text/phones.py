"""TIMIT phone sets (Lee & Hon 1989, "Speaker-independent phone recognition using hidden Markov
models"; the same table as Kaldi's egs/timit/s5/conf/phones.60-48-39.map): the 61 phones of
the transcriptions are trained as 61, 48 or 39 classes and always scored folded to 39; the
glottal stop "q" is deleted.
"""

from __future__ import annotations

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
