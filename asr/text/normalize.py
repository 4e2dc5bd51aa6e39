"""Text normalisation, for training and for scoring.

Training transcripts (``normalize_text(text, language)``): lower case, digits spelled out as
words, punctuation removed, apostrophes inside words kept, single spaces between words. English
(the default) keeps only ``a-z``, the apostrophe and the space (accents folded: "café" ->
"cafe"). Any other language (``data.language``, an ISO 639 code such as "de", "ru", "zh-CN")
keeps its script: NFKC (full-width forms, ligatures), lower case where the script has case,
every letter and combining mark kept, digits spelled by num2words where it knows the language
(else kept), everything else a word break. Scripts written without spaces (Chinese, Japanese,
Thai, Lao, Khmer, Burmese: :func:`writes_without_spaces`) are scored by CER first.

Scoring (``Normalizer``): configurable, so that other systems' outputs are scored fairly; both
sides are normalised the same way. The options (``--normalize`` takes a comma-separated list):

- ``lower``     lower-case (Unicode casefold)
- ``punct``     drop punctuation; hyphens and slashes become spaces; apostrophes inside words stay
                (``don't``), quote-like ones go
- ``numbers``   spell digits as English words: ``42`` -> ``forty two``, ``3.5`` -> ``three point
                five``, ``1,000`` -> ``one thousand``, ``2nd`` -> ``second``
- ``nonwords``  drop Kaldi/sclite-style non-speech tokens: ``[noise]``, ``<unk>``, ``(%hesitation)``
- ``all``       all of the above; ``none`` (the default) only collapses white space
- ``whisper``   OpenAI Whisper's English normaliser (spellings, numbers, contractions, fillers;
                the ``whisper-normalizer`` package), applied first, so scores compare with
                papers that use it; ``whisper_basic``: its language-agnostic one (lower case,
                symbols and bracketed text dropped)

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


ENGLISH = "en"
# primary language subtags of scripts written without spaces between words
_NO_SPACES = {"zh", "ja", "th", "lo", "km", "my", "yue", "wuu", "bo", "dz"}


def primary_language(language: str) -> str:
    """The primary subtag, lower case: "zh-CN" -> "zh", "pt_BR" -> "pt", "" -> "en"."""
    return (language or ENGLISH).replace("_", "-").split("-")[0].lower()


def writes_without_spaces(language: str) -> bool:
    """Whether the language's script puts no spaces between words (its WER is meaningless)."""
    return primary_language(language) in _NO_SPACES


def normalize_text(text: str, language: str = ENGLISH) -> str:
    """Training-transcript normalisation for `language` (see the module doc).

    >>> normalize_text("It's 5 o'clock, Mr. O'Brien!")
    "it's five o'clock mr o'brien"
    >>> normalize_text("Straße, 3 Äpfel!", "de")
    'straße drei äpfel'
    """
    if primary_language(language) != ENGLISH:
        return _normalize_any_script(text, language)
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


def _word_char(c: str) -> bool:
    """Letters and combining marks of any script (Devanagari vowel signs, Arabic harakat)."""
    return unicodedata.category(c)[0] in "LM"


def spell_number(digits: str, language: str) -> str:
    """Digits as words in `language` (num2words), or the digits unchanged where num2words is
    not installed or does not know the language."""
    try:
        from num2words import num2words
        return num2words(int(digits), lang=language.replace("-", "_"))
    except (ImportError, NotImplementedError, OverflowError, ValueError):
        try:
            from num2words import num2words
            return num2words(int(digits), lang=primary_language(language))
        except (ImportError, NotImplementedError, OverflowError, ValueError):
            return digits


def _normalize_any_script(text: str, language: str) -> str:
    lang = primary_language(language)
    text = unicodedata.normalize("NFKC", text)
    text = _APOSTROPHE_VARIANTS.sub("'", text)
    if lang in ("tr", "az"):  # dotted and dotless i: I -> ı, İ -> i
        text = text.replace("I", "\u0131").replace("\u0130", "i")
    text = text.lower()  # a no-op for scripts without case
    text = re.sub(r"(?<=\d)[,.\u00a0 ](?=\d{3}(?!\d))", "", text)  # 1,000 / 1.000 / 1 000
    text = re.sub(r"\d+", lambda m: f" {spell_number(m.group(0), language)} ", text)
    text = "".join(c if _word_char(c) or c in "' " or c.isdigit() else " " for c in text)
    text = _LONE_APOSTROPHE.sub(" ", text)
    text = " ".join(text.split())
    if lang in _NO_SPACES:  # a break next to such a script's character is no word boundary
        text = _SPACELESS_GAP.sub("", text)
    return unicodedata.normalize("NFC", text)


# characters of scripts without spaces: Thai, Lao, Tibetan, Burmese, Khmer, kana, CJK ideographs
_SPACELESS = ("\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff"
              "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff")
_SPACELESS_GAP = re.compile(f"(?<=[{_SPACELESS}]) | (?=[{_SPACELESS}])")


# ---------------------------------------------------------------- scoring

OPTIONS = ("lower", "punct", "numbers", "nonwords")
WHISPER = ("whisper", "whisper_basic")  # external normalisers, not part of "all"


def whisper_normalizer(kind: str):
    """Whisper's EnglishTextNormalizer ("whisper") or BasicTextNormalizer ("whisper_basic")."""
    try:
        if kind == "whisper":
            from whisper_normalizer.english import EnglishTextNormalizer
            return EnglishTextNormalizer()
        from whisper_normalizer.basic import BasicTextNormalizer
        return BasicTextNormalizer()
    except ImportError:
        raise ImportError(f"--normalize {kind} needs the whisper-normalizer package: "
                          "pip install 'asr-ctc[text]' (or whisper-normalizer)") from None

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
                 nonwords: bool = False, mapping: dict[str, str] | None = None,
                 whisper: str = ""):
        self.lower, self.punct, self.numbers, self.nonwords = lower, punct, numbers, nonwords
        self.whisper = whisper  # "", "whisper" or "whisper_basic"
        self._whisper = whisper_normalizer(whisper) if whisper else None
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
        unknown = opts - set(OPTIONS) - set(WHISPER)
        if unknown:
            raise ValueError(f"unknown normalisation option(s) {sorted(unknown)}; "
                             f"choose from {', '.join(OPTIONS + WHISPER)}, all, none")
        external = sorted(opts & set(WHISPER))
        if len(external) > 1:
            raise ValueError("choose one of whisper and whisper_basic")
        return cls(**{o: True for o in opts - set(WHISPER)}, whisper=external[0] if external else "",
                   mapping=read_mapping(mapping) if mapping else None)

    @property
    def is_identity(self) -> bool:
        return not (self.lower or self.punct or self.numbers or self.nonwords or self.mapping
                    or self.whisper)

    def describe(self) -> str:
        opts = ([self.whisper] if self.whisper else []) + [o for o in OPTIONS if getattr(self, o)]
        if self.mapping:
            opts.append(f"mapping ({len(self.mapping)} rules)")
        return ", ".join(opts) if opts else "none (white space only)"

    def __call__(self, text: str) -> str:
        return " ".join(self.tokens(text))

    def tokens(self, text: str) -> list[str]:
        """The normalised words of text."""
        if self._whisper is not None:
            text = self._whisper(text)
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
