"""LJSpeech 1.1 (one speaker, 13,100 clips, 22.05 kHz): metadata.csv + wavs/ -> manifests.

data.source is ``LJSpeech-1.1/`` (or the folder above it, or LJSpeech-1.1.tar.bz2)::

    LJSpeech-1.1/metadata.csv     "LJ001-0001|raw transcription|normalized transcription"
    LJSpeech-1.1/wavs/LJ001-0001.wav

The normalised transcription (numbers, abbreviations spelled out) is used when present, then
asr.text.normalize.normalize_text. There is no official split: dev and test are every k-th clip
(data.dev_fraction, data.test_fraction; 5% each by default), spread evenly over the books.
"""

from __future__ import annotations

from pathlib import Path

from asr.data.checks import BAD_LINE, BAD_UTF8, Checks, Summary

from .common import find_dir, prepare_splits, source_dir, stride_split


def find_corpus(source: Path) -> Path:
    found = find_dir(source, lambda d: (d / "metadata.csv").is_file() and (d / "wavs").is_dir(), 2)
    if found is None:
        raise FileNotFoundError(f"ljspeech: no metadata.csv + wavs/ in {source}")
    return found


def items(corpus: Path, split: str, dev_fraction: float, test_fraction: float):
    with open(corpus / "metadata.csv", "rb") as f:
        for index, raw in enumerate(f):
            if stride_split(index, dev_fraction, test_fraction) != split:
                continue
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                yield {"id": f"metadata.csv:{index + 1}", "audio": f"metadata.csv:{index + 1}",
                       "reject": (BAD_UTF8, f"byte at offset {e.start}")}
                continue
            parts = line.split("|")
            if len(parts) < 2 or not parts[0]:
                yield {"id": f"metadata.csv:{index + 1}", "audio": f"{corpus}/metadata.csv:{index + 1}",
                       "reject": (BAD_LINE, f"expected id|text|normalized text, got {line[:60]!r}")}
                continue
            text = parts[2] if len(parts) > 2 and parts[2].strip() else parts[1]
            yield {"id": parts[0], "audio": str(corpus / "wavs" / f"{parts[0]}.wav"), "text": text,
                   "speaker": "LJ"}


def prepare(cfg, progress: bool = True, summary: Summary | None = None) -> Summary:
    corpus = find_corpus(source_dir(cfg, "ljspeech"))
    summary = summary or Summary("ljspeech")
    d, t = cfg.data.dev_fraction, cfg.data.test_fraction
    splits = {s: (lambda s=s: items(corpus, s, d, t)) for s in ("train", "dev", "test")}
    prepare_splits(cfg.data.root, splits, Checks.from_config(cfg), summary, cfg.data.nj, progress)
    return summary
