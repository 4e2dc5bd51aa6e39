"""Mozilla Common Voice: a release folder (one language) -> manifests.

data.source is the language folder of an extracted release (or the release archive, or the
folder above a single language)::

    cv-corpus-17.0-2024-03-15/en/train.tsv  dev.tsv  test.tsv  validated.tsv  other.tsv ...
    cv-corpus-17.0-2024-03-15/en/clips/common_voice_en_123456.mp3

The TSVs are tab-separated with a header (client_id, path, sentence, up_votes, down_votes, age,
gender, accents, ..., locale, segment; columns vary by release: they are found by name) and no
quoting. Each TSV named in data.subsets (default train, dev, test) becomes the split of that
name; clips stay where they are (mp3, read with soundfile). speaker = client_id. Text is
normalised with asr.text.normalize.normalize_text for data.language, which must be the
release's language (its folder name: en, de, ru, zh-CN, ...); outside English the characters
of the training text are the vocabulary.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from asr.data.checks import BAD_LINE, Checks, Summary
from asr.text.normalize import primary_language

from .common import prepare_splits, source_dir

DEFAULT_SUBSETS = ["train", "dev", "test"]


def _is_release(d: Path) -> bool:
    return (d / "clips").is_dir() and any((d / f"{n}.tsv").is_file() for n in ("train", "validated"))


def find_release(source: Path) -> Path:
    if _is_release(source):
        return source
    found = [d for d in sorted(source.glob("*")) + sorted(source.glob("*/*")) if d.is_dir() and _is_release(d)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise FileNotFoundError(f"commonvoice: no release folder (clips/ + train.tsv) in {source}")
    raise ValueError(f"commonvoice: {source} holds several languages; point data.source at one of: "
                     + ", ".join(str(d) for d in found))


def tsv_items(release: Path, name: str):
    path = release / f"{name}.tsv"
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None) or []
        col = {h.strip(): i for i, h in enumerate(header)}
        if "path" not in col or "sentence" not in col:
            raise ValueError(f"commonvoice: {path} has no 'path' and 'sentence' columns (header: {header})")
        ip, it, ic = col["path"], col["sentence"], col.get("client_id")
        for lineno, row in enumerate(reader, 2):
            if len(row) <= max(ip, it):
                if any(x.strip() for x in row):
                    yield {"id": f"{name}:{lineno}", "audio": f"{path}:{lineno}",
                           "reject": (BAD_LINE, f"{len(row)} columns, expected {len(header)}")}
                continue
            clip = row[ip]
            audio = release / "clips" / clip
            item = {"id": Path(clip).stem, "audio": str(audio), "text": row[it],
                    "speaker": row[ic] if ic is not None and ic < len(row) else "", "subset": name}
            try:
                row[it].encode("utf-8")
            except UnicodeEncodeError:
                item["reject"] = ("transcript is not valid UTF-8", f"{path.name}:{lineno}")
            yield item


def check_language(release: Path, language: str) -> None:
    """A release folder named for another language than data.language is a configuration
    mistake (every sentence would be normalised for the wrong script): say so."""
    folder = release.name
    if len(folder) <= 8 and primary_language(folder) != primary_language(language):
        raise ValueError(f"commonvoice: {release} is the {folder!r} release but data.language is "
                         f"{language!r}: set data.language={folder}")


def prepare(cfg, progress: bool = True, summary: Summary | None = None) -> Summary:
    release = find_release(source_dir(cfg, "commonvoice"))
    check_language(release, cfg.data.language)
    names = list(cfg.data.subsets or DEFAULT_SUBSETS)
    missing = [n for n in names if not (release / f"{n}.tsv").is_file()]
    if missing:
        raise FileNotFoundError(f"commonvoice: {release} has no {', '.join(n + '.tsv' for n in missing)}")
    summary = summary or Summary("commonvoice")
    splits = {n: (lambda n=n: tsv_items(release, n)) for n in names}
    prepare_splits(cfg.data.root, splits, Checks.from_config(cfg), summary, cfg.data.nj, progress,
                   train_split=cfg.data.train_split)
    return summary
