"""Your own recordings -> manifests: a folder of audio files with a transcript next to each, or
a CSV/TSV table of audio paths and texts.

Folder (data.source = a folder)::

    my_corpus/alice/0001.wav  my_corpus/alice/0001.txt    (or .lab: the transcript, UTF-8)
    my_corpus/bob/take2.flac  my_corpus/bob/take2.txt

Audio: wav, flac, mp3, ogg/opus, sph, aiff, au; any sample rate, mono or stereo (mixed to mono
and resampled when features are computed). The speaker is the first folder below the corpus
(or the split folder), if any. When the folder has ``train/``, ``dev/``, ``test/`` subfolders,
those are the splits; otherwise dev and test are every k-th recording (data.dev_fraction,
data.test_fraction). A transcript without its audio file, an audio file without transcript,
unreadable/corrupt/silent audio, invalid UTF-8, empty or untranscribable text are each
reported once (file and reason) and left out.

Table (data.source = a .csv / .tsv / .txt file; delimiter from the extension or sniffed)::

    path,text[,speaker][,split]        header optional; column names are recognised:
    clips/0001.wav,Hello world.        path|audio|audio_filepath|file|filename|wav,
                                       text|transcript|transcription|sentence, speaker|client_id

Relative paths are taken from the table's folder; a ``split`` column assigns splits.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from asr.data.checks import BAD_LINE, BAD_UTF8, Checks, MISSING, NO_TRANSCRIPT, Summary

from .common import AUDIO_EXTENSIONS, list_dir, prepare_splits, source_dir, stride_split

TRANSCRIPT_EXTENSIONS = (".txt", ".lab")
SPLIT_DIRS = ("train", "dev", "test")
PATH_COLUMNS = ("path", "audio", "audio_filepath", "audio_path", "file", "filename", "file_name", "wav")
TEXT_COLUMNS = ("text", "transcript", "transcription", "sentence", "normalized_text")
SPEAKER_COLUMNS = ("speaker", "speaker_id", "client_id", "spk")


def _skip(name: str) -> bool:
    low = name.lower()
    return low.startswith((".", "readme", "license", "licence")) or low.endswith(".tmp")


def walk(base: Path, rel: tuple[str, ...] = ()):
    """Audio entries below base in sorted order: (audio path, transcript path or None for a
    transcript whose audio is missing, relative parts)."""
    entries = list_dir(base / Path(*rel)) if rel else list_dir(base)
    audio_stems = set()
    for e in entries:
        if _skip(e.name):
            continue
        stem, ext = Path(e.name).stem, Path(e.name).suffix.lower()
        if ext in AUDIO_EXTENSIONS:  # a directory with an audio name counts too: reported
            audio_stems.add(stem)
            folder = Path(e.path).parent
            transcript = next((folder / (stem + t) for t in TRANSCRIPT_EXTENSIONS
                               if (folder / (stem + t)).exists()), folder / (stem + ".txt"))
            yield Path(e.path), transcript, rel
        elif e.is_dir():
            yield from walk(base, rel + (e.name,))
    for e in entries:
        stem, ext = Path(e.name).stem, Path(e.name).suffix.lower()
        if ext in TRANSCRIPT_EXTENSIONS and stem not in audio_stems and not _skip(e.name):
            yield None, Path(e.path), rel


def folder_items(base: Path, split: str, split_of):
    """Items of one split of a folder corpus; split_of(index) -> split of the index-th entry."""
    for index, (audio, transcript, rel) in enumerate(walk(base)):
        if split_of(index) != split:
            continue
        if audio is None:
            yield {"id": transcript.stem, "audio": str(transcript),
                   "reject": (MISSING, "a transcript without its audio file")}
            continue
        uid = "-".join([*rel, audio.stem])
        item = {"id": uid, "audio": str(audio), "speaker": rel[0] if rel else ""}
        if transcript.is_file() or transcript.exists():
            item["text_file"] = str(transcript)
        else:
            item["reject"] = (NO_TRANSCRIPT, f"no {audio.stem}.txt or .lab next to it")
        yield item


def _delimiter(path: Path, sample: str) -> str:
    if path.suffix.lower() == ".tsv":
        return "\t"
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        return ","


def _open_table(table: Path):
    """(file, csv reader) streaming the table; undecodable bytes survive as surrogates."""
    f = open(table, encoding="utf-8-sig", errors="surrogateescape", newline="")
    sample = f.read(4096)
    f.seek(0)
    return f, csv.reader(f, delimiter=_delimiter(table, sample))


def table_items(table: Path, split: str, dev_fraction: float, test_fraction: float):
    f, rows = _open_table(table)
    with f:
        yield from _table_rows(table, rows, split, dev_fraction, test_fraction)


def _table_rows(table: Path, rows, split: str, dev_fraction: float, test_fraction: float):
    first = next(rows, None)
    if first is None:
        return
    names = [c.strip().lower() for c in first]

    def col(options):
        return next((names.index(o) for o in options if o in names), None)

    ip, it = col(PATH_COLUMNS), col(TEXT_COLUMNS)
    header = ip is not None and it is not None
    if not header:
        ip, it, ispk, isplit, iid = 0, 1, (2 if len(first) > 2 else None), None, None
        rows_iter = _chain([first], rows)
    else:
        ispk, isplit, iid = col(SPEAKER_COLUMNS), col(("split", "subset")), col(("id", "utt_id"))
        rows_iter = rows
    for index, row in enumerate(rows_iter):
        lineno = index + (2 if header else 1)
        where = f"{table}:{lineno}"
        if split_of_row(row, isplit, index, dev_fraction, test_fraction) != split:
            continue
        if len(row) <= max(ip, it):
            if any(c.strip() for c in row):
                yield {"id": where, "audio": where, "reject": (BAD_LINE, f"{len(row)} column(s)")}
            continue
        path = Path(row[ip].strip())
        audio = path if path.is_absolute() else table.parent / path
        item = {"id": row[iid].strip() if iid is not None and iid < len(row) and row[iid].strip()
                else "-".join(path.with_suffix("").parts[-2:] if len(path.parts) > 1 else [path.stem]),
                "audio": str(audio), "text": row[it],
                "speaker": row[ispk].strip() if ispk is not None and ispk < len(row) else ""}
        try:
            row[it].encode("utf-8")
        except UnicodeEncodeError:
            item["reject"] = (BAD_UTF8, f"{where}: the text column")
        yield item


def split_of_row(row, isplit, index, dev_fraction, test_fraction) -> str:
    if isplit is not None and isplit < len(row) and row[isplit].strip():
        value = row[isplit].strip().lower()
        return {"validation": "dev", "valid": "dev", "val": "dev"}.get(value, value)
    return stride_split(index, dev_fraction, test_fraction)


def _chain(*iterables):
    for it in iterables:
        yield from it


def prepare(cfg, progress: bool = True, summary: Summary | None = None) -> Summary:
    source = source_dir(cfg, "folder")
    summary = summary or Summary("folder")
    d, t = cfg.data.dev_fraction, cfg.data.test_fraction
    if source.is_file():
        csv.field_size_limit(sys.maxsize)
        splits = {s: (lambda s=s: table_items(source, s, d, t)) for s in SPLIT_DIRS}
        extra = _table_splits(source) - set(SPLIT_DIRS)
        splits.update({s: (lambda s=s: table_items(source, s, d, t)) for s in sorted(extra)})
    elif any((source / s).is_dir() for s in SPLIT_DIRS):
        splits = {s: (lambda s=s: folder_items(source / s, s, lambda i, s=s: s))
                  for s in SPLIT_DIRS if (source / s).is_dir()}
    else:
        splits = {s: (lambda s=s: folder_items(source, s, lambda i: stride_split(i, d, t)))
                  for s in SPLIT_DIRS}
    prepare_splits(cfg.data.root, splits, Checks.from_config(cfg), summary, cfg.data.nj, progress,
                   train_split=cfg.data.train_split)
    return summary


def _table_splits(table: Path) -> set[str]:
    """Split names used in a table's split column (other than the stride default)."""
    names = set()
    f, rows = _open_table(table)
    with f:
        header = [c.strip().lower() for c in next(rows, [])]
        for key in ("split", "subset"):
            if key in header:
                i = header.index(key)
                for row in rows:
                    if i < len(row) and row[i].strip():
                        names.add(split_of_row(row, i, 0, 0, 0))
                break
    return names
