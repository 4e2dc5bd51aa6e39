"""N-gram language models with KenLM: `asr lm build` (lmplz -> ARPA -> build_binary) and lexicons.

KenLM's programs ship in no wheel; ``asr lm install-tools`` (asr.decoding.kenlm_tools; ``make
setup`` runs it for ``.venv/kenlm/bin``) compiles ``lmplz`` and ``build_binary``, once per user. Decoding then loads the binary model
through flashlight-text (inside torchaudio's ``ctc_decoder``); the ``kenlm`` Python module is
not needed.

Files written by :func:`build_lm` into the LM folder::

    text.txt        the normalised training text (one sentence a line)
    lm.arpa         word n-gram model, ARPA text (order ``lm.order``)
    lm.bin          the same model in KenLM's binary format (fast to load)
    lexicon.txt     every LM word spelled in model tokens: ``word<TAB>w o r d |``
                    (subword units: in the sentencepiece model's pieces, ``word<TAB>\u2581wo rd``)
    char.arpa/.bin  optional character n-gram (``lm.char_order > 0``) for lexicon-free search
                    (subword units: an n-gram over pieces)
    lm.json         what was built, from what, with which settings
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from asr.text.normalize import normalize_text, writes_without_spaces

from asr.text.lexicon import LexiconVocab
from asr.text.vocab import CharVocab, Vocab
from asr.utils import atomic_open, atomic_write_text

log = logging.getLogger(__name__)

SIL = "|"  # the decoder's word-boundary token, standing for the model's " "
SPECIAL_WORDS = ("<s>", "</s>", "<unk>")


class LmError(RuntimeError):
    """A language model that cannot be built or used; the message says why and what to do."""


def kenlm_program(name: str) -> str:
    """Path of a KenLM program (``lmplz`` or ``build_binary``).

    Looked for in $ASR_KENLM_BIN, then <venv>/kenlm/bin (where `make setup` puts it), then the
    user's cache (`asr lm install-tools`), then on PATH. Raises LmError naming the fix when it
    is nowhere.
    """
    from asr.decoding.kenlm_tools import user_tools_dir
    dirs = [os.environ.get("ASR_KENLM_BIN", ""), str(Path(sys.prefix) / "kenlm" / "bin"),
            str(user_tools_dir())]
    for d in dirs:
        if d and os.access(Path(d) / name, os.X_OK):
            return str(Path(d) / name)
    found = shutil.which(name)
    if found:
        return found
    raise LmError(f"KenLM's {name} not found (looked in {', '.join(d for d in dirs if d)} and PATH): "
                  "run `asr lm install-tools` (or `make setup`) to build it")


def _run(cmd: list[str], log_path: Path) -> None:
    """Run a KenLM program, its stderr going to log_path; LmError with the log's tail on failure."""
    with open(log_path, "w", encoding="utf-8") as err:
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=err)
    if proc.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-1500:]
        raise LmError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}); see {log_path}:\n{tail}")


def prepare_text(src: str | Path, dst: str | Path, vocab: Vocab | None = None,
                 language: str = "en", weighted: list[tuple[Path, int]] = ()) -> dict:
    """Normalise a text file for LM training (asr.text.normalize.normalize_text, one sentence a line).

    src: input text, one sentence (or paragraph) a line, any case/punctuation.
    dst: output file. vocab: lines with characters outside it are dropped (default CharVocab()).
    language: data.language; in scripts written without spaces every character is a word of
    the LM (and of its lexicon), so the beam search can put a boundary anywhere.
    weighted: (path, times) of further texts, each of their sentences written `times` times
        after src's: count merging (Bacchiani & Roark), which gives an in-domain text the weight
        of `times` copies against a broad one in the same Kneser-Ney estimate.
    Returns {"sentences", "words", "dropped"} (sentences and words count every copy).
    """
    vocab = vocab or CharVocab()
    kept = words = dropped = 0
    with open(dst, "w", encoding="utf-8") as fout:
        for path, times in [(src, 1), *weighted]:
            for text in _lm_lines(path, language):
                if not vocab.covers(text):
                    dropped += 1
                    continue
                fout.write((text + "\n") * times)
                kept += times
                words += times * len(text.split())
    if kept == 0:
        raise LmError(f"{src}: no usable sentences for a language model")
    return {"sentences": kept, "words": words, "dropped": dropped}


def _lm_lines(path: str | Path, language: str):
    """The non-empty normalised lines of a text file; in scripts without spaces, one word a
    character."""
    spaceless = writes_without_spaces(language)
    with open(path, encoding="utf-8") as f:
        for line in f:
            text = normalize_text(line, language)
            if spaceless:
                text = " ".join(text.replace(" ", ""))
            if text:
                yield text


def is_subword(vocab) -> bool:
    """Whether vocab is a sentencepiece subword vocabulary (words start at "\u2581" pieces)."""
    return bool(getattr(vocab, "word_prefix", None))


def is_phone_lexicon(vocab) -> bool:
    """Whether vocab writes words as their phones (data.units=phone_lexicon: a lexicon inside)."""
    return isinstance(vocab, LexiconVocab)


# flashlight's trie keeps at most this many words per spelling (kTrieMaxLabel); more homophones
# would be dropped by it in insertion order, with a line on stderr for each
TRIE_MAX_HOMOPHONES = 6


def write_phone_lexicon(words, path: str | Path, vocab) -> int:
    """``word<TAB>ph ph ph`` lines, one per pronunciation, for the words of a phone_lexicon
    model: the vocabulary's own pronunciations (its corpus's words, letter-to-sound included),
    else CMUdict's or derived ones (asr.text.lexicon.pronunciations). Words only the LM text
    has and CMUdict lacks are left out (logged): letter-to-sound for them (69k rare words of
    the built-in LM text) took 2 minutes of a 30-minute demo on one core and moved no WER
    (recipes/builtin/RESULTS.md). Words come in order of preference (arpa_words: most probable
    first): a pronunciation shared by more than TRIE_MAX_HOMOPHONES words keeps the first ones
    (the rest logged). The count of words."""
    from asr.text.lexicon import pronunciations
    words = [w for w in dict.fromkeys(words) if w and " " not in w]
    found, stats = pronunciations([w for w in words if w not in vocab.lexicon], use_g2p=False)
    if stats["missing"]:
        log.info("%s: %d word(s) of the LM text that CMUdict lacks and the corpus does not use "
                 "left out, e.g. %s", path, len(stats["missing"]), ", ".join(stats["missing"][:5]))
    homophones, crowded, n = Counter(), [], 0
    with open(path, "w", encoding="utf-8") as f:
        for w in words:
            prons = [p for p in vocab.lexicon.get(w) or found.get(w) or []
                     if homophones[tuple(p)] < TRIE_MAX_HOMOPHONES]
            if not prons and (vocab.lexicon.get(w) or found.get(w)):
                crowded.append(w)
            homophones.update(tuple(p) for p in prons)
            f.writelines(f"{w}\t{' '.join(p)}\n" for p in prons)
            n += bool(prons)
    if crowded:
        log.info("%s: %d word(s) left out, each pronounced as %d more probable words already "
                 "are (the search keeps that many per pronunciation), e.g. %s", path,
                 len(crowded), TRIE_MAX_HOMOPHONES, ", ".join(crowded[:5]))
    return n


def char_text(src: str | Path, dst: str | Path, vocab=None) -> None:
    """Rewrite word text as token text for a character LM: 'ab cd' -> 'a b | c d'; for a
    subword vocab, as its pieces: 'ab cd' -> '\u2581ab \u2581c d'."""
    with open(src, encoding="utf-8") as fin, open(dst, "w", encoding="utf-8") as fout:
        for line in fin:
            if is_subword(vocab):
                fout.write(" ".join(vocab.pieces(line.strip())) + "\n")
            else:
                fout.write(f" {SIL} ".join(" ".join(w) for w in line.split()) + "\n")


def run_lmplz(text: str | Path, arpa: str | Path, order: int, memory: str = "1G",
              discount_fallback: bool = True, prune: str = "", tmp_dir: str | Path | None = None) -> None:
    """Estimate a modified Kneser-Ney n-gram model with KenLM's lmplz.

    text: training text, one sentence a line, tokens separated by spaces.
    arpa: output ARPA file. order: n-gram order (2..6; the build supports up to 6).
    memory: lmplz -S, the sorting memory cap ("1G", "20%").
    discount_fallback: pass --discount_fallback, needed when a small corpus leaves some
        count-of-counts at zero (the fallback discounts are used only then).
    prune: lmplz --prune thresholds, e.g. "0 0 1" (empty: no pruning).
    tmp_dir: lmplz -T, for its temporary files (default: beside the output).
    """
    if not 2 <= order <= 6:
        raise LmError(f"lm order must be 2..6 (KenLM built with KENLM_MAX_ORDER=6), not {order}")
    arpa = Path(arpa)
    cmd = [kenlm_program("lmplz"), "-o", str(order), "-S", memory, "-T", str(tmp_dir or arpa.parent),
           "--text", str(text), "--arpa", str(arpa)]
    if discount_fallback:
        cmd.append("--discount_fallback")
    if prune:
        cmd += ["--prune", *prune.split()]
    _run(cmd, arpa.with_suffix(".lmplz.log"))
    finite_backoffs(arpa)


def finite_backoffs(arpa: str | Path, floor: str = "-99") -> int:
    """Replace '-inf' back-off weights in an ARPA file by `floor`; returns how many.

    lmplz writes -inf as the back-off of a context that leaves no probability mass to lower
    orders (on tiny texts, e.g. <s> when every word starts a sentence); build_binary and the
    decoder's loader refuse it, and -99 (log10) means the same in practice.
    """
    arpa = Path(arpa)
    with open(arpa, encoding="utf-8") as f:
        if not any(line.rstrip("\n").endswith("\t-inf") for line in f):
            return 0
    n = 0
    with open(arpa, encoding="utf-8") as fin, atomic_open(arpa, fsync=False) as fout:
        for line in fin:
            if line.endswith("\t-inf\n"):
                line = line[: -len("-inf\n")] + floor + "\n"
                n += 1
            fout.write(line)
    return n


BINARY_ARGS = {"probing": [], "trie": ["trie"], "trie-q8": ["-q", "8", "-b", "8", "trie"]}  # lm.binary


def run_build_binary(arpa: str | Path, binary: str | Path, kind: str = "probing") -> None:
    """Convert an ARPA model to KenLM's binary format: kind "probing" (hash tables), "trie" or
    "trie-q8" (probabilities and back-offs quantised to 8 bits)."""
    _run([kenlm_program("build_binary"), *BINARY_ARGS[kind], str(arpa), str(binary)],
         Path(binary).with_suffix(".build.log"))


def arpa_words(arpa: str | Path) -> list[str]:
    """The unigrams of an ARPA file, most probable first (file order among equals), without
    <s>, </s> and <unk>."""
    scored, inside = [], False
    with open(arpa, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("\\1-grams:"):
                inside = True
            elif inside and line.startswith("\\"):
                break
            elif inside and line:
                fields = line.split("\t") if "\t" in line else line.split()
                if fields[1] not in SPECIAL_WORDS:
                    scored.append((-float(fields[0]), len(scored), fields[1]))
    return [w for _, _, w in sorted(scored)]


def spell(word: str, vocab=None) -> list[str]:
    """Decoder tokens of a word in the lexicon: its characters, then the word boundary '|';
    for a subword vocab, the pieces the sentencepiece model cuts it into ("\u2581he llo").

    (Flashlight's lexicon search must see a token after a word's last character: without the
    '|' it would also emit words whose last letter is a mere CTC repeat, "man" + "n" -> "mann".
    Subword units have no such token: the next word's "\u2581" piece is the boundary.)
    """
    if is_subword(vocab):
        return vocab.pieces(word)
    if is_phone_lexicon(vocab):  # its first pronunciation; no boundary token, as for subwords
        return list(vocab.lexicon[word][0])
    return list(word) + [SIL]


def write_lexicon(words, path: str | Path, vocab: Vocab | None = None) -> int:
    """Write ``word<TAB>c h a r s |`` lines (subword vocab: ``word<TAB>pie ces``) for the words
    spellable in vocab; returns the count."""
    if is_phone_lexicon(vocab):
        return write_phone_lexicon(words, path, vocab)
    vocab = vocab or CharVocab()
    n = 0
    seen = set()
    with open(path, "w", encoding="utf-8") as f:
        for w in words:
            if w in seen or not w or " " in w or not vocab.covers(w):
                continue
            seen.add(w)
            f.write(f"{w}\t{' '.join(spell(w, vocab))}\n")
            n += 1
    return n


def read_lexicon(path: str | Path) -> list[tuple[str, list[str]]]:
    """(word, spelling tokens) of every lexicon line."""
    with open(path, encoding="utf-8") as f:
        return [(parts[0], parts[1:]) for parts in (line.split() for line in f) if parts]


def read_lexicon_words(path: str | Path) -> list[str]:
    return [word for word, _ in read_lexicon(path)]


def build_lm(text: str | Path, out_dir: str | Path, order: int = 4, char_order: int = 0,
             memory: str = "1G", discount_fallback: bool = True, prune: str = "",
             vocab: Vocab | None = None, language: str = "en",
             weighted: list[tuple[Path, int]] = (), binary: str = "probing") -> dict:
    """Build the word LM (ARPA + binary), its lexicon and optionally a character LM.

    text: training sentences (normalised here). out_dir: the LM folder (created).
    order: word n-gram order. char_order: character n-gram order, 0 for none.
    memory, discount_fallback, prune: as run_lmplz; binary: lm.bin's format (run_build_binary).
    vocab: the model's tokens (default
    CharVocab; a SentencePieceVocab spells the lexicon and the token LM in its pieces).
    language: the text's language; weighted: further texts and their copies (see prepare_text).
    Returns the build summary also written to out_dir/lm.json.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if is_phone_lexicon(vocab) and char_order:
        raise LmError("lm.char_order needs character or subword units: a phone model searches "
                      "words through its lexicon (set lm.char_order=0)")
    # a phone model's LM keeps every English sentence: its words get pronunciations below
    text_vocab = None if is_phone_lexicon(vocab) else vocab
    stats = prepare_text(text, out / "text.txt", text_vocab, language, weighted)
    run_lmplz(out / "text.txt", out / "lm.arpa", order, memory, discount_fallback, prune)
    run_build_binary(out / "lm.arpa", out / "lm.bin", binary)
    n_words = write_lexicon(arpa_words(out / "lm.arpa"), out / "lexicon.txt", vocab)
    summary = {"text": str(text), "order": order, "prune": prune, "binary_format": binary,
               **stats, "lexicon_words": n_words,
               "weighted": {str(path): times for path, times in weighted},
               "arpa": str(out / "lm.arpa"), "binary": str(out / "lm.bin"),
               "lexicon": str(out / "lexicon.txt")}
    if is_subword(vocab):
        summary["units"] = f"{vocab.kind or 'sentencepiece'} ({len(vocab) - 1} pieces)"
    if is_phone_lexicon(vocab):
        summary["units"] = f"phones ({len(vocab) - 2}), the lexicon spelled in them"
    if char_order:
        char_text(out / "text.txt", out / "char.txt", vocab)
        run_lmplz(out / "char.txt", out / "char.arpa", char_order, memory, discount_fallback, prune)
        run_build_binary(out / "char.arpa", out / "char.bin")
        summary.update(char_order=char_order, char_binary=str(out / "char.bin"))
    atomic_write_text(out / "lm.json", json.dumps(summary, indent=1) + "\n")
    return summary


def lm_paths(cfg) -> dict:
    """{dir, text, binary, lexicon, char_binary} of a Config's LM section, defaults resolved:
    lm.dir defaults to <data.root>/lm, lm.text to <data.root>/manifests/train_text.txt."""
    root = Path(cfg.data.root)
    d = Path(cfg.lm.dir) if cfg.lm.dir else root / "lm"
    text = Path(cfg.lm.text) if cfg.lm.text else root / "manifests" / "train_text.txt"
    return {"dir": d, "text": text, "binary": d / "lm.bin", "lexicon": d / "lexicon.txt",
            "char_binary": d / "char.bin"}


def lm_vocab(cfg):
    """The vocabulary `asr lm build` spells the lexicon in: the recipe's phone lexicon for
    data.units=phone_lexicon, its sentencepiece model for data.units=bpe/unigram (the same <data.root>/lang/ file training uses, trained now if
    missing: asr.text.units.build_vocab) and the training text's characters outside English,
    else None (English characters)."""
    from asr.config import SUBWORD_UNITS
    from asr.text.normalize import ENGLISH, primary_language
    from asr.text.units import build_vocab
    units, language = cfg.data.units, primary_language(cfg.data.language)
    own = units in SUBWORD_UNITS or units == "phone_lexicon" or language != ENGLISH
    return build_vocab(cfg.data) if own else None


def transcript_text(cfg, out_dir: str | Path) -> Path:
    """Write the unique transcripts of the training split (<data.root>/manifests/
    <data.train_split>.jsonl) to out_dir/transcripts.txt, for lm.transcript_times; LmError when
    the split has no manifest (training from shards only: give the text with lm.text instead)."""
    from asr.data.manifest import read_manifest
    manifest = Path(cfg.data.root) / "manifests" / f"{cfg.data.train_split}.jsonl"
    if not manifest.is_file():
        raise LmError(f"lm.transcript_times={cfg.lm.transcript_times} needs the training "
                      f"transcripts, but {manifest} does not exist (run `make data`, or set "
                      "lm.transcript_times=0)")
    lines = dict.fromkeys(e.get("text", "").strip() for e in read_manifest(manifest))
    out = Path(out_dir) / "transcripts.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "".join(t + "\n" for t in lines if t))
    return out


def build_config_lm(cfg, text: str | Path | None = None, out_dir: str | Path | None = None) -> dict:
    """`asr lm build` for a Config: its text (default lm_paths), folder, order, units and
    language, with the training transcripts weighted lm.transcript_times more times."""
    paths = lm_paths(cfg)
    text = Path(text) if text else paths["text"]
    out = Path(out_dir) if out_dir else paths["dir"]
    if not text.is_file():
        raise FileNotFoundError(f"{text}: no LM training text (run `make data`, or give --text)")
    times = cfg.lm.transcript_times
    weighted = [(transcript_text(cfg, out), times)] if times > 0 else []
    return build_lm(text, out, order=cfg.lm.order, char_order=cfg.lm.char_order,
                    memory=cfg.lm.memory, discount_fallback=cfg.lm.discount_fallback,
                    prune=cfg.lm.prune, vocab=lm_vocab(cfg), language=cfg.data.language,
                    weighted=weighted, binary=cfg.lm.binary)
