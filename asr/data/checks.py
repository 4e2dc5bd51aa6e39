"""Checking utterances before they are trained on: one item's audio and text (``probe``) and
the reasons an item is rejected. The Summary that data preparation and ``asr validate`` both
end with (usable utterances and hours per split, every rejected item with its reason) is in
asr.data.summary (importable from here too).

An item is a plain dict from a corpus importer (data_prep):

    {"id": "19-198-0001", "audio": "/path/19-198-0001.flac", "text": "RAW TEXT",
     "speaker": "19", "subset": "train-clean-100"}

(or "text_file" instead of "text": a transcript file read in the worker). ``probe`` checks one
item (the audio is decoded, or only its header read, see Checks) and returns
``[("ok", entry)]`` or ``[("bad", file, kind, detail)]``. Stereo and any sample rate are fine
(mixed to mono and resampled when features are computed).
"""

from __future__ import annotations

import copy
import re
import unicodedata
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.config import SUBWORD_UNITS, WORD_TEXT_UNITS, Config, apply
from asr.data.audio import AudioError
from asr.data.audio import ffmpeg_decode
from asr.data.summary import CONSOLE_LIMIT, Reject, Summary  # noqa: F401 (their old import path)
from asr.model import output_frames
from asr.text.normalize import ENGLISH, normalize_text, primary_language
from asr.text.vocab import ctc_min_frames, make_vocab

# Reasons an item is rejected (the "kind" of a rejection; details follow in the report).
MISSING = "missing file"
NOT_A_FILE = "not a file"
UNDECODABLE = "cannot decode audio"
NO_SAMPLES = "audio has no samples"
NON_FINITE = "NaN or infinite samples"
SILENT = "silent audio"
TRUNCATED = "truncated audio"
DURATION = "duration mismatch"
BAD_UTF8 = "transcript is not valid UTF-8"
NO_TRANSCRIPT = "no transcript"
EMPTY_TEXT = "empty transcript"
OOV = "characters outside the vocabulary"
TOO_LONG = "label longer than the subsampled frames"
TOO_SHORT = "text too short for its audio"
NON_SPEECH = "non-speech sound"  # a sound effect, laugh, grunt: no words to transcribe
BAD_LINE = "bad manifest line"
DUPLICATE = "duplicate id"


# The config keys a Checks reads, by the attribute it keeps each under (their defaults, types
# and meaning are the config's: asr.config.sections).
CONFIG_KEYS = {"check_audio": ("data", "check_audio"),  # decode every file, or read headers only
               "units": ("data", "units"),  # the vocabulary the text must be covered by
               "phone_set": ("data", "phone_set"),
               "language": ("data", "language"),  # how text is normalised
               "min_letters_per_second": ("data", "min_letters_per_second"),
               "subsample": ("model", "subsample"),  # the frames CTC will see ...
               "hop_ms": ("features", "hop_ms"),  # ... for the label-length check
               "sample_rate": ("features", "sample_rate")}


class Checks:
    """How items are checked: the config keys of CONFIG_KEYS, and normalize.

    Checks(cfg) reads them from a Config (None: the defaults); keyword arguments set single
    ones by attribute name, checked as the config checks them: Checks(cfg, check_audio=False),
    Checks(units="bpe", subsample=2). Checks.from_config(cfg, ...) is the same.

    check_audio (data.check_audio): decode every file (corrupt/truncated/NaN/silent audio
        found; exact duration) or read the header only (fast; trusts the file).
    normalize: run asr.text.normalize.normalize_text on character transcripts (importers) or
        take the text as it is (validating a manifest).
    language (data.language): how text is normalised; outside English, characters and subwords
        have no fixed vocabulary (it is built from the training text later), so any letter of
        the language's script is accepted.
    units / phone_set (data.*): the vocabulary the text must be covered by (make_vocab).
    subsample (model.), hop_ms, sample_rate (features.): to check that the label fits the
        frames CTC will see.
    min_letters_per_second (data.): reject a transcript with fewer letters per second of audio
        than this (0 = off): far too little text for the audio is likely the wrong transcript.
    """

    def __init__(self, cfg: Config | None = None, normalize: bool = True, **settings):
        unknown = sorted(set(settings) - set(CONFIG_KEYS))
        if unknown:
            raise TypeError(f"Checks: unknown setting(s) {unknown} (known: {', '.join(CONFIG_KEYS)})")
        cfg = Config() if cfg is None else copy.deepcopy(cfg)
        values: dict = {}
        for name, value in settings.items():
            section, key = CONFIG_KEYS[name]
            values.setdefault(section, {})[key] = value
        apply(cfg, values, "Checks")
        for name, (section, key) in CONFIG_KEYS.items():
            setattr(self, name, getattr(getattr(cfg, section), key))
        self.normalize = normalize

    @classmethod
    def from_config(cls, cfg, **kw) -> "Checks":
        return cls(cfg, **kw)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in (*CONFIG_KEYS, "normalize"))
        return f"Checks({fields})"

    @property
    def english(self) -> bool:
        return primary_language(self.language) == ENGLISH

    def vocab(self):
        if not self.english and (self.units == "char" or self.units in SUBWORD_UNITS):
            return _AnyCharacters()
        if self.units in SUBWORD_UNITS or self.units == "phone_lexicon":
            # phone_lexicon: the lexicon is built later from the prepared transcripts (letter-to-
            # sound rules for words CMUdict lacks), so characters are the coverage check here
            # and a word's phones are about as many as its letters for the label-length check.
            # The sentencepiece model is trained later, from the prepared training text, with
            # character_coverage=1.0: every character of normalised text gets a piece. So the
            # character vocabulary is the coverage check. The label-length check counts
            # characters, a close bound (a word of n characters is at most n + 1 pieces, most
            # far fewer); training checks the real pieces again (asr.data.store.AsrDataset).
            return make_vocab("char")
        return make_vocab(self.units, phone_set=self.phone_set)


class _AnyCharacters:
    """Stands in for a vocabulary not built yet: every character is a unit (label lengths)."""

    def covers(self, text: str) -> bool:
        return True

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]


# --- one utterance -----------------------------------------------------------------------------

_WAV_DATA = re.compile(r"^data : (\d+) \(should be (\d+)\)", re.M)


def probe_audio(path: str | Path, decode: bool = True) -> tuple[float | None, str | None, str]:
    """(duration in seconds, None, "") for usable audio, else (None, kind, detail).

    decode=True reads every sample (in blocks: memory stays small for long files) and rejects
    undecodable, truncated, empty, non-finite and all-zero audio; decode=False reads the header.
    """
    path = Path(path)
    if not path.exists():
        return None, MISSING, ""
    if not path.is_file():
        return None, NOT_A_FILE, "a directory" if path.is_dir() else "not a regular file"
    if path.stat().st_size == 0:
        return None, NO_SAMPLES, "empty file (0 bytes)"
    try:
        with sf.SoundFile(str(path)) as f:
            rate, declared, extra, fmt = f.samplerate, f.frames, f.extra_info, f.format
            if not decode:
                if declared <= 0:
                    return None, NO_SAMPLES, "the header declares no samples"
                return declared / rate, None, ""
            count, peak, finite = 0, 0.0, True
            for block in f.blocks(blocksize=1 << 16, dtype="float32", always_2d=True):
                count += len(block)
                if finite and not np.isfinite(block).all():
                    finite = False
                elif finite and len(block):
                    peak = max(peak, float(np.abs(block).max()))
    except Exception as e:  # libsndfile raises several types for corrupt input
        msg = getattr(e, "error_string", None) or str(e) or type(e).__name__
        return None, UNDECODABLE, msg.replace(str(path), path.name).strip()
    if count == 0:
        return None, NO_SAMPLES, ""
    if not finite:  # libmpg123 turns frames of some valid MP3s into NaN: FFmpeg decodes them
        try:
            samples, _ = ffmpeg_decode(str(path), path.name)
        except AudioError:
            return None, NON_FINITE, ""
        peak = float(np.abs(samples).max()) if len(samples) else 0.0
    if peak == 0.0:
        return None, SILENT, "every sample is zero"
    m = _WAV_DATA.search(extra or "")
    if m and 0 < int(m.group(2)) < int(m.group(1)) < 0x7FFF0000:  # streamed wavs declare ~2^32
        return None, TRUNCATED, f"the header declares {m.group(1)} bytes of audio, the file holds {m.group(2)}"
    # mp3 headers often only estimate the length (no Xing/Info frame): a wider margin there
    share, gap = (0.9, 0.5) if fmt == "MP3" else (0.98, 0.05)
    if declared > 0 and count < share * declared and (declared - count) / rate > gap:
        return None, TRUNCATED, (f"the header declares {declared / rate:.2f} s, "
                                 f"only {count / rate:.2f} s decode")
    return count / rate, None, ""


def probe_segment(path: str | Path, offset: float, duration: float,
                  decode: bool = True) -> tuple[float | None, str | None, str]:
    """probe_audio for a segment of a long recording (offset and duration in seconds): the
    segment must lie inside the file (within 50 ms); decode=True reads only its samples and
    rejects non-finite or all-zero ones. (duration, None, "") or (None, kind, detail)."""
    path = Path(path)
    if not path.is_file():
        return None, (MISSING if not path.exists() else NOT_A_FILE), ""
    try:
        info = sf.info(str(path))
    except Exception as e:  # noqa: BLE001 - libsndfile raises several types
        return None, UNDECODABLE, (getattr(e, "error_string", None) or str(e)).replace(str(path), path.name)
    total = info.frames / info.samplerate if info.frames > 0 else float("inf")
    if offset < 0 or duration <= 0:
        return None, DURATION, f"segment {offset:.3f} s +{duration:.3f} s"
    if offset + duration > total + 0.05:
        return None, TRUNCATED, (f"segment {offset:.3f}-{offset + duration:.3f} s of a "
                                 f"{total:.3f} s recording")
    if decode:
        from asr.data.audio import AudioError, load_audio
        try:
            wav = load_audio(path, info.samplerate, offset, duration)
        except AudioError as e:
            return None, UNDECODABLE, str(e).replace(str(path), path.name)
        if not bool(wav.abs().max() > 0):
            return None, SILENT, f"every sample of {offset:.3f} s +{duration:.3f} s is zero"
    return duration, None, ""


def oov_letters(raw: str) -> list[str]:
    """Letters of raw text that normalisation cannot map to a-z (it would silently drop them)."""
    text = unicodedata.normalize("NFKD", raw)
    return sorted({c for c in text.lower()
                   if c.isalpha() and not unicodedata.combining(c) and not ("a" <= c <= "z")})


def check_text(text: str, checks: Checks, vocab) -> tuple[str, str | None, str]:
    """(text to store, None, "") or (text, kind, detail)."""
    if checks.units in WORD_TEXT_UNITS and checks.normalize:
        bad = oov_letters(text) if checks.english else []
        if bad:
            return text, OOV, f"{''.join(bad)!r} in {text.strip()[:80]!r}"
        text = normalize_text(text, checks.language)
    elif checks.units == "phone":
        text = " ".join(text.split())
    if not text.strip():
        return text, EMPTY_TEXT, ""
    if not vocab.covers(text):
        unknown = sorted({t for t in (text.split() if checks.units == "phone" else text)
                          if not vocab.covers(t)})
        return text, OOV, f"{unknown!r} in {text[:80]!r}"
    return text, None, ""


def label_fits(text: str, duration: float, checks: Checks, vocab) -> tuple[bool, str]:
    """Can CTC emit the label in the frames left after subsampling? (False, detail) if not."""
    hop = int(round(checks.sample_rate * checks.hop_ms / 1000))
    frames = 1 + int(round(duration * checks.sample_rate)) // hop
    available = output_frames(frames, checks.subsample)
    needed = ctc_min_frames(vocab.encode(text))
    if needed > available:
        return False, (f"{needed} label frames needed (repeats count twice), {available} after "
                       f"subsampling {duration:.2f} s by {checks.subsample}")
    return True, ""


def speaking_rate(text: str, duration: float, checks: Checks) -> tuple[str | None, str]:
    """(TOO_SHORT, detail) when the text has fewer letters per second of audio than
    checks.min_letters_per_second, else (None, "")."""
    least = checks.min_letters_per_second
    letters = sum(c.isalpha() for c in text)
    if least and letters < least * duration:
        return TOO_SHORT, f"{letters} letters in {duration:.2f} s (fewer than {least:g} a second)"
    return None, ""


def read_transcript_file(path: str | Path) -> tuple[str | None, str | None, str]:
    """(text, None, "") or (None, kind, detail) for a transcript file next to an audio file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, NO_TRANSCRIPT, f"{path.name} is missing"
    except IsADirectoryError:
        return None, NO_TRANSCRIPT, f"{path.name} is a directory"
    except OSError as e:
        return None, NO_TRANSCRIPT, f"{path.name}: {e.strerror}"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return None, BAD_UTF8, f"{path.name}: byte {data[e.start]:#04x} at offset {e.start}"
    return " ".join(text.split()), None, ""


_vocab_cache: dict = {}


def vocab_for(checks: Checks):
    key = (checks.units, checks.phone_set, checks.english)
    if key not in _vocab_cache:
        _vocab_cache[key] = checks.vocab()
    return _vocab_cache[key]


def check_transcript(text: str, duration: float, checks: Checks) -> tuple[str, str | None, str]:
    """(text to store, None, "") when the text suits audio of this duration, else (text, kind,
    detail): covered by the vocabulary, emittable by CTC in the frames, not far too short."""
    vocab = vocab_for(checks)
    text, kind, detail = check_text(text, checks, vocab)
    if not kind:
        ok, detail = label_fits(text, duration, checks, vocab)
        kind = None if ok else TOO_LONG
    if not kind:
        kind, detail = speaking_rate(text, duration, checks)
    return text, kind, detail


def probe(item: dict, checks: Checks) -> list[tuple]:
    """Check one item; [("ok", manifest entry)] or [("bad", file, kind, detail)]."""
    audio = item["audio"]
    if "reject" in item:  # found bad while enumerating (e.g. a transcript line without audio)
        return [("bad", item.get("report", audio), *item["reject"])]
    if "text" in item:
        text = item["text"]
    else:
        text, kind, detail = read_transcript_file(item["text_file"])
        if kind:
            return [("bad", item.get("report", audio), kind, detail)]
    if "offset" in item:  # a segment of a long recording (lhotse supervisions, NeMo offsets)
        duration, kind, detail = probe_segment(audio, item["offset"], item["duration"],
                                               checks.check_audio)
    else:
        duration, kind, detail = probe_audio(audio, checks.check_audio)
    if kind:
        return [("bad", item.get("report", audio), kind, detail)]
    text, kind, detail = check_transcript(text, duration, checks)
    if kind:
        return [("bad", item.get("report", audio), kind, detail)]
    entry = {"id": item["id"], "audio_filepath": str(audio), "duration": round(duration, 3),
             "text": text, "speaker": item.get("speaker", "")}
    if "offset" in item:
        entry["offset"] = round(float(item["offset"]), 3)
    if item.get("subset"):
        entry["subset"] = item["subset"]
    return [("ok", entry)]
