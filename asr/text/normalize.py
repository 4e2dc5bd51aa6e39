"""Text normalisation, for training and for scoring.

Training transcripts (``normalize_text``): lower case, digits spelled out as words, punctuation
removed, apostrophes inside words kept, single spaces between words.

Scoring (``Normalizer``): configurable, so that other systems' outputs are scored fairly; both
sides are normalised the same way. The options (``--normalize`` takes a comma-separated list):

- ``lower``     lower-case (Unicode casefold)
- ``punct``     drop punctuation; hyphens and slashes become spaces; apostrophes inside words stay
                (``don't``), quote-like ones go
- ``numbers``   spell digits as English words: ``42`` -> ``forty two``, ``3.5`` -> ``three point
                five``, ``1,000`` -> ``one thousand``, ``2nd`` -> ``second``
- ``nonwords``  drop Kaldi/sclite-style non-speech tokens: ``[noise]``, ``<unk>``, ``(%hesitation)``
- ``all``       all of the above; ``none`` (the default) only collapses white space

A mapping file (``--mapping FILE``) is applied last, to both reference and hypothesis, on whole
words: one rule per line, ``FROM TO...`` (first word -> the rest of the line; nothing after the
first word deletes it) or, for multi-word sources, ``FROM PHRASE<TAB>TO PHRASE``. Lines starting
with ``#`` are comments. Example::

    colour color
    okay ok
    uh
    all right\talright
"""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path

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


# ---------------------------------------------------------------- scoring

OPTIONS = ("lower", "punct", "numbers", "nonwords")

_NONWORD = re.compile(r"(?<!\S)(?:\[[^\]\s]*\]|<[^>\s]*>|\(%[^)\s]*\))(?!\S)")
_ORDINAL_EXCEPTIONS = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                       "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}
_NUMBER = re.compile(r"\d+(?:,\d{3})+(?!\d)|\d+(?:\.\d+)?(?:st|nd|rd|th)?")


def _punct_regex() -> re.Pattern:
    """One character class of every Unicode punctuation character except the apostrophe."""
    ranges, start, prev = [], None, None
    for cp in range(sys.maxunicode + 1):
        if cp != 0x27 and unicodedata.category(chr(cp)).startswith("P"):
            if start is None:
                start = cp
            elif cp != prev + 1:
                ranges.append((start, prev))
                start = cp
            prev = cp
    ranges.append((start, prev))
    cls = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
                  for a, b in ranges)
    return re.compile(f"[{cls}]+")


_PUNCT: re.Pattern | None = None
_APOSTROPHE_VARIANTS = re.compile("[\u2019\u2018`\u02bc]")
_LONE_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")
_MAYBE_PUNCT = re.compile(r"[^\w\s]|_")  # cheap pre-check: clean text skips the regexes below
_ASCII_PUNCT = re.compile(r"""[!"#%&()*,\-./:;?@\[\\\]_{}]+""")  # category P within ASCII, but '



def _ordinal(words: str) -> str:
    head, _, last = words.rpartition(" ")
    if last in _ORDINAL_EXCEPTIONS:
        last = _ORDINAL_EXCEPTIONS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head} {last}" if head else last


def _spell(match: re.Match) -> str:
    tok = match.group(0)
    suffix = ""
    if tok[-2:] in ("st", "nd", "rd", "th"):
        tok, suffix = tok[:-2], tok[-2:]
    tok = tok.replace(",", "")
    if "." in tok:
        whole, frac = tok.split(".")
        words = number_to_words(int(whole)) + " point " + " ".join(number_to_words(int(d)) for d in frac)
    elif len(tok) > 15:  # ids, phone numbers: digit by digit
        words = " ".join(number_to_words(int(d)) for d in tok)
    else:
        words = number_to_words(int(tok))
    if suffix:
        words = _ordinal(words)
    return f" {words} "


def read_mapping(path: str | Path) -> dict[str, str]:
    """Read a mapping file (see the module doc) into {source phrase: replacement}."""
    mapping: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if "\t" in line:
                src, _, dst = line.partition("\t")
            else:
                src, _, dst = line.strip().partition(" ")
            src, dst = " ".join(src.split()), " ".join(dst.split())
            if not src:
                raise ValueError(f"{path}:{lineno}: empty source word")
            mapping[src] = dst
    return mapping


class Normalizer:
    """Callable text -> normalised text; `Normalizer.parse("lower,punct", mapping="map.txt")`."""

    def __init__(self, lower: bool = False, punct: bool = False, numbers: bool = False,
                 nonwords: bool = False, mapping: dict[str, str] | None = None):
        self.lower, self.punct, self.numbers, self.nonwords = lower, punct, numbers, nonwords
        self.mapping = dict(mapping or {})
        self._map_re = None
        if self.mapping:
            alts = sorted(self.mapping, key=len, reverse=True)
            self._map_re = re.compile(r"(?<!\S)(?:" + "|".join(re.escape(a) for a in alts) + r")(?!\S)")
        if punct:
            global _PUNCT
            if _PUNCT is None:
                _PUNCT = _punct_regex()

    @classmethod
    def parse(cls, spec: str | None = "none", mapping: str | Path | None = None) -> "Normalizer":
        opts = {o.strip().lower() for o in (spec or "none").split(",") if o.strip()}
        if "all" in opts:
            opts = (opts - {"all"}) | set(OPTIONS)
        opts.discard("none")
        unknown = opts - set(OPTIONS)
        if unknown:
            raise ValueError(f"unknown normalisation option(s) {sorted(unknown)}; "
                             f"choose from {', '.join(OPTIONS)}, all, none")
        return cls(**{o: True for o in opts}, mapping=read_mapping(mapping) if mapping else None)

    @property
    def is_identity(self) -> bool:
        return not (self.lower or self.punct or self.numbers or self.nonwords or self.mapping)

    def describe(self) -> str:
        opts = [o for o in OPTIONS if getattr(self, o)]
        if self.mapping:
            opts.append(f"mapping ({len(self.mapping)} rules)")
        return ", ".join(opts) if opts else "none (white space only)"

    def __call__(self, text: str) -> str:
        return " ".join(self.tokens(text))

    def tokens(self, text: str) -> list[str]:
        """The normalised words of text."""
        if self.nonwords and ("[" in text or "<" in text or "(%" in text):
            text = _NONWORD.sub(" ", text)
        if self.numbers:
            text = _NUMBER.sub(_spell, text)
        if self.lower:
            text = text.casefold()
        if self.punct:
            if _MAYBE_PUNCT.search(text):
                if text.isascii():
                    text = _ASCII_PUNCT.sub(" ", text.replace("`", "'"))
                else:
                    text = _PUNCT.sub(" ", _APOSTROPHE_VARIANTS.sub("'", text))
            if "'" in text:  # apostrophes survive only between letters/digits (don't, o'clock)
                text = _LONE_APOSTROPHE.sub(" ", text)
        if self._map_re is not None:
            text = self._map_re.sub(self._replace, " ".join(text.split()))
        return text.split()

    def _replace(self, m: re.Match) -> str:
        return self.mapping[m.group(0)]
