"""Text normalisation and the character vocabulary.

Normalised text is lower case, digits spelled out as words, punctuation removed,
apostrophes inside words kept, single spaces between words.
"""

from __future__ import annotations

import re
import unicodedata

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
         "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
         "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]


def number_to_words(n: int) -> str:
    """Spell a non-negative integer in English words: 1984 -> 'one thousand nine hundred eighty four'."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " hundred" + ("" if rest == 0 else " " + number_to_words(rest))
    for scale, name in _SCALES:
        if n >= scale:
            high, rest = divmod(n, scale)
            return number_to_words(high) + " " + name + ("" if rest == 0 else " " + number_to_words(rest))
    raise AssertionError("unreachable")


def _spell_digits(match: re.Match) -> str:
    digits = match.group(0)
    # Very long digit strings (phone numbers, ids) are read digit by digit.
    if len(digits) > 15:
        return " ".join(_ONES[int(d)] for d in digits)
    return number_to_words(int(digits))


def normalize_text(text: str) -> str:
    """Lower-case, spell digits, drop punctuation, keep word-internal apostrophes.

    >>> normalize_text("It's 5 o'clock, Mr. O'Brien!")
    "it's five o'clock mr o'brien"
    """
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    text = text.lower()
    text = text.replace("&", " and ").replace("%", " percent ")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 1,000 -> 1000
    text = re.sub(r"\d+", lambda m: " " + _spell_digits(m) + " ", text)
    text = re.sub(r"[^a-z' ]+", " ", text)
    # Apostrophes survive only between letters (don't, o'clock), not as quotes.
    text = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", text)
    return " ".join(text.split())


class CharVocab:
    """Characters of normalised text; index 0 is the CTC blank."""

    BLANK = "<blank>"

    def __init__(self, tokens: list[str] | None = None):
        self.tokens = tokens or [self.BLANK, " ", "'"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
        if self.tokens[0] != self.BLANK:
            raise ValueError("the first token of a CTC vocabulary must be the blank")
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def blank(self) -> int:
        return 0

    def encode(self, text: str) -> list[int]:
        """Token ids of text; raises ValueError naming characters outside the vocabulary."""
        unknown = sorted({c for c in text if c not in self.index})
        if unknown:
            raise ValueError(f"characters outside the vocabulary: {unknown!r}")
        return [self.index[c] for c in text]

    def covers(self, text: str) -> bool:
        return all(c in self.index for c in text)

    def decode(self, ids) -> str:
        return "".join(self.tokens[i] for i in ids if i != self.blank)
