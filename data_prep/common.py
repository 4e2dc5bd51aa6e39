"""What every corpus importer shares: streaming checked items into manifests, held-out splits
for corpora without official ones, and finding (or safely extracting) the corpus source.

An importer enumerates *items* (see asr.data.checks: plain dicts, in a fixed order, lazily);
``prepare_splits`` probes them over worker processes and ``write_split`` streams the results
into a manifest (memory stays flat in corpus size), counting everything in a Summary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable

from asr.data.checks import Checks, Summary, probe
from asr.data.manifest import write_manifest
from asr.utils import atomic_open, atomic_write_text, pool_map

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".sph", ".nist", ".aiff", ".aif",
                    ".au")
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip", ".deb")


# --- writing -----------------------------------------------------------------------------------

def manifest_path(path: str | Path, mdir: Path, root: Path) -> str:
    """Relative to the manifest folder when inside the data root, else absolute."""
    p = Path(path).absolute()
    root = Path(root).absolute()
    if p == root or root in p.parents:
        return os.path.relpath(p, Path(mdir).absolute())
    return str(p)


def write_split(root: str | Path, split: str, results: Iterable[tuple], summary: Summary,
                text_out=None, progress: bool = False, total: int | None = None) -> Path:
    """Stream results into <root>/manifests/<split>.jsonl (atomic); count into summary.
    text_out: an open text file that receives each usable transcript (training text)."""
    from tqdm import tqdm
    root = Path(root)
    mdir = root / "manifests"
    bar = tqdm(total=total, desc=f"{summary.title} {split}", unit="utt", disable=not progress,
               mininterval=1.0)

    def good():
        for r in results:
            bar.update(1)
            if r[0] == "ok":
                e = r[1]
                e["audio_filepath"] = manifest_path(e["audio_filepath"], mdir, root)
                summary.ok(split, e["duration"])
                if text_out is not None:
                    text_out.write(e["text"] + "\n")
                yield e
            else:
                summary.bad(split, *r[1:])

    path = mdir / f"{split}.jsonl"
    summary._split(split)
    try:
        write_manifest(path, good())
    finally:
        bar.close()
    return path


def prepare_splits(root: str | Path, splits: dict[str, Callable[[], Iterable[dict]]],
                   checks: Checks, summary: Summary, nj: int = 1, progress: bool = False,
                   train_split: str = "train") -> dict[str, Path]:
    """For each split, probe its items over nj workers and write its manifest; the usable
    transcripts of train_split also go to manifests/train_text.txt. splits maps a split name to
    a function returning that split's items (called once, lazily)."""
    root = Path(root)
    paths = {}
    for split, items in splits.items():
        results = pool_map(probe, items(), checks, nj)
        if split == train_split:
            with atomic_open(root / "manifests" / "train_text.txt") as text_out:
                paths[split] = write_split(root, split, results, summary, text_out, progress)
        else:
            paths[split] = write_split(root, split, results, summary, None, progress)
    return paths


def prepare_one_split(cfg, name: str, items: Callable[[Counter], Iterable[dict]],
                      progress: bool = False, summary: Summary | None = None, split: str = "all",
                      counted: str = "left out") -> Summary:
    """Every item of a corpus without official splits into manifests/<split>.jsonl (held-out
    splits by speaker come from data_prep.heldout). items(counts) enumerates the items and
    counts in `counts` what it leaves aside, each reason noted in the summary as
    "<counted>: <n> <reason>"."""
    summary = summary or Summary(name)
    counts: Counter = Counter()
    prepare_splits(cfg.data.root, {split: lambda: items(counts)}, Checks.from_config(cfg), summary,
                   cfg.data.nj, progress, train_split=split)
    for reason, n in counts.most_common():
        summary.note(f"{counted}: {n} {reason}")
    return summary


_GOLDEN = (5 ** 0.5 - 1) / 2


def stride_split(index: int, dev_fraction: float, test_fraction: float) -> str:
    """Deterministic held-out split of the index-th item of a corpus without official splits.

    Item i goes to dev when frac((i + 1) * golden ratio) < dev_fraction, to test when it falls in
    the next test_fraction: a low-discrepancy sequence, so the held-out items are spread evenly
    over the corpus, their share is within a few items of the fraction at any corpus size, and
    the choice needs no second pass and no memory.
    """
    u = ((index + 1) * _GOLDEN) % 1.0
    if u < dev_fraction:
        return "dev"
    if u < dev_fraction + test_fraction:
        return "test"
    return "train"


# --- sources -----------------------------------------------------------------------------------

def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def source_dir(cfg, corpus: str) -> Path:
    """data.source as a folder: an archive (.tar.gz, .zip, ...; a Debian package .deb, from
    `apt-get download`) is extracted safely into <root>/download/<name>/ first (once; a stamp
    marks a finished extraction)."""
    if not cfg.data.source:
        raise ValueError(f"{corpus}: set data.source to the corpus folder "
                         f"(make data RECIPE=... DATA=/path/to/{corpus})")
    source = Path(cfg.data.source).expanduser()
    if not source.exists():
        raise FileNotFoundError(f"{corpus}: data.source {source} does not exist")
    if is_archive(source):
        name = source.name
        for suffix in ARCHIVE_SUFFIXES:
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
                break
        target = Path(cfg.data.root) / "download" / name
        stamp = target / ".extracted"
        if not stamp.exists():
            extract(source, target)
            atomic_write_text(stamp, str(source))
        return target
    return source


def extract(archive: Path, target: Path) -> None:
    """Unpack an archive into target: tar/zip member by member (asr.data.archive.safe_extract),
    a .deb with dpkg-deb (which keeps its files under target)."""
    if archive.name.lower().endswith(".deb"):
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(archive), str(target)], check=True)
        return
    from asr.data.archive import safe_extract
    safe_extract(archive, target)


def find_dir(base: Path, predicate: Callable[[Path], bool], depth: int = 3) -> Path | None:
    """base or the first folder below it (breadth first, sorted, up to depth) that satisfies
    predicate; for sources given as the folder above the corpus (e.g. the download folder)."""
    level = [base]
    for _ in range(depth + 1):
        nxt = []
        for d in level:
            if predicate(d):
                return d
            try:
                nxt += sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError:
                continue
        level = nxt
    return None


def list_dir(path: Path) -> list[os.DirEntry]:
    """Sorted directory entries (by name)."""
    with os.scandir(path) as it:
        return sorted(it, key=lambda e: e.name)
