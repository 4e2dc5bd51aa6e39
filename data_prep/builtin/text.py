"""Sentences of the built-in corpus: the fortunes, WordNet and King James Bible sources, the
cleaning that keeps only speakable normalised sentences, the disjoint train/dev/test pools, and
the language-model text (lm_sentences: the training sentences plus GCIDE and manual pages)."""

from __future__ import annotations

import gzip
import logging
import random
import re
import shutil
import subprocess
from pathlib import Path

from asr.text.normalize import normalize_text

log = logging.getLogger(__name__)

FORTUNE_DIR = Path("/usr/share/games/fortunes")
WORDNET_DIR = Path("/usr/share/wordnet")
GCIDE_DICT = Path("/usr/share/dictd/gcide.dict.dz")  # dict-gcide; dictzip is gzip-readable
MAN_DIR = Path("/usr/share/man")

_RAW_OK = re.compile(r"^[A-Za-z0-9 .,;:!?'\"()\-&%\u2018\u2019]+$")
_ABBREV = {"etc", "eg", "ie", "vs", "prof", "gen", "col", "capt", "sgt", "lt", "rev", "vol",
           "inc", "ltd", "corp", "esq", "hon", "messrs", "viz", "cf", "al"}
_SENT_END = re.compile(r"(?<=[.!?])[\"')\u2019]*\s+")


def _split_sentences(text: str, extra: str = "") -> list[str]:
    """Split running text at sentence ends (and at the characters in extra, e.g. ';:')."""
    text = " ".join(text.split())
    parts = _SENT_END.split(text)
    if extra:
        parts = [q for p in parts for q in re.split(f"(?<=[{re.escape(extra)}])\\s+", p)]
    return parts


def clean_sentence(raw: str) -> str | None:
    """Normalised sentence if it is usable for speech, else None.

    Keeps 3-20 words and 10-160 characters of [a-z' ]; rejects raw text with symbols that hint
    at code or lists, and words a synthesiser would expand or spell (mr, etc, initials).
    """
    raw = raw.strip()
    if not raw or not _RAW_OK.match(raw):
        return None
    text = normalize_text(raw)
    words = text.split()
    if not (3 <= len(words) <= 20 and 10 <= len(text) <= 160):
        return None
    if not re.fullmatch(r"[a-z' ]+", text):
        return None
    for w in words:
        bare = w.replace("'", "")
        if w in _ABBREV or (len(w) == 1 and w not in "aio") or (
                len(bare) > 1 and not re.search(r"[aeiouy]", bare)):
            return None
    return text


def _fortune_texts(root: Path) -> list[str]:
    """Raw sentences of every fortune file (entries end at '%'; attribution lines dropped)."""
    out = []
    for path in sorted(p for p in root.iterdir() if p.is_file() and not p.suffix):
        body = path.read_text(encoding="utf-8", errors="replace")
        body = re.sub(r".\x08", "", body)  # overstruck (bold/underlined) characters
        for entry in body.split("\n%\n"):
            lines = []
            for line in entry.splitlines():
                if re.match(r"^\s*(--|\u2014)", line):  # "-- Author, Work"
                    break
                lines.append(line)
            out += _split_sentences(" ".join(lines))
    return out


def _wordnet_texts(root: Path) -> list[str]:
    """Quoted example sentences after the gloss ('| definition; "example"') in data.*."""
    out = []
    for path in sorted(root.glob("data.*")):
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(" ") or "|" not in line:  # licence header
                    continue
                gloss = line.split("|", 1)[1]
                for example in re.findall(r'"([^"]+)"', gloss):
                    out += _split_sentences(example)
    return out


def _bible_texts() -> list[str]:
    """KJV verses via the bible-kjv `bible` program, split at sentence and clause ends."""
    exe = shutil.which("bible")
    if exe is None:
        return []
    try:
        res = subprocess.run([exe, "-l100000", "gen1:1-rev22:21"], capture_output=True,
                             text=True, timeout=120, check=True)
    except (subprocess.SubprocessError, OSError) as e:
        log.warning("bible-kjv text unavailable (%s); skipped", e)
        return []
    out = []
    for line in res.stdout.splitlines():
        m = re.match(r"^\s*\d+\s+(.*)$", line)  # "  12 verse text"; headings have no number
        if m:
            out += _split_sentences(m.group(1), extra=";:")
    return out


def collect_sentences() -> dict[str, list[str]]:
    """{source: clean normalised sentences}, deduplicated across sources, in a fixed order."""
    sources = {"fortunes": lambda: _fortune_texts(FORTUNE_DIR),
               "wordnet": lambda: _wordnet_texts(WORDNET_DIR),
               "bible": _bible_texts}
    seen: set[str] = set()
    result = {}
    for name, read in sources.items():
        kept = []
        for raw in read():
            text = clean_sentence(raw)
            if text and text not in seen:
                seen.add(text)
                kept.append(text)
        result[name] = kept
    return result


def split_pools(sentences: list[str], seed: int) -> dict[str, list[str]]:
    """Shuffle with the seed and cut disjoint dev / test / train sentence pools.

    dev and test pools are a fixed share (not depending on the requested hours), so the
    evaluation sentences stay the same when the training set grows.
    """
    pool = sorted(set(sentences))
    random.Random(seed).shuffle(pool)
    n_eval = min(3000, len(pool) // 20)
    return {"test": pool[:n_eval], "dev": pool[n_eval:2 * n_eval], "train": pool[2 * n_eval:]}


def _gcide_texts(path: Path = GCIDE_DICT) -> list[str]:
    """Definitions and quotations of the GCIDE dictionary (Webster's 1913 + WordNet), without
    headword lines, [bracketed] etymologies and labels, {markup} braces and --Author marks."""
    if not path.exists():
        log.warning("%s not found (Debian package dict-gcide); skipped", path)
        return []
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        body = f.read()
    out = []
    for block in body.split("\n\n"):
        lines = [ln for ln in block.splitlines() if "\\" not in ln]  # "Word \\Word\\, n."
        text = re.sub(r"\[[^\]]*\]", " ", " ".join(lines))
        text = re.sub(r"--\s*[A-Z][\w.]*\.?", " ", text.replace("{", "").replace("}", ""))
        out += _split_sentences(text, extra=";:")
    return out


_ROFF_ESCAPE = re.compile(r"\\(f[BIRP]|f\(..|s[-+]?\d|\(..|\*\(..|\*.|[-&e|^ ])")


def _manpage_texts(root: Path = MAN_DIR) -> list[str]:
    """Prose of the English manual pages (roff text lines, requests and escapes removed)."""
    out = []
    for path in sorted(root.glob("man[1-8]/*.gz")):
        try:
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
                lines = [_ROFF_ESCAPE.sub("", ln) for ln in f if not ln.startswith((".", "'"))]
        except (OSError, EOFError):
            continue
        out += _split_sentences(" ".join(lines))
    return out


LM_SOURCES = {"gcide": _gcide_texts, "manpages": _manpage_texts}  # builtin.lm_sources choices


def source_sentences(sources: list[str]) -> list[str]:
    """The clean normalised sentences of each of `sources` (LM_SOURCES names), in order."""
    return [t for name in sources for t in map(clean_sentence, LM_SOURCES[name]()) if t]


def lm_sentences(train_text: Path, lines: list[str], extra: list[str],
                 exclude: set[str]) -> list[str]:
    """Language-model text: the sentences already in train_text, then `lines` (normalised
    transcripts), then `extra` (source_sentences), deduplicated, without any sentence in
    `exclude` (held-out lines)."""
    seen = set(exclude)
    out = []
    for text in [*_lines(train_text), *lines, *extra]:
        if text and text not in seen:
            seen.add(text)
            out.append(text)
    return out


def _lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def vocabulary(train_text: Path, extra: list[str]) -> set[str]:
    """The words of train_text and of extra: what counts as an English word for the real
    corpora's transcripts (data_prep.mixture.invented_share)."""
    return {w for text in [*_lines(train_text), *extra] for w in text.split()}
