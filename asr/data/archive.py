"""Downloads and archives from outside: checksums verified, extraction that cannot escape.

Archive members are refused (with the archive and member named) when they are absolute paths,
climb out with `..`, are symbolic or hard links pointing outside the target, or are device
files, FIFOs or other special files. Nothing is extracted from an archive that has such a
member: it is checked whole before the first file is written.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath


class UnsafeArchiveError(Exception):
    """An archive member that would write outside the target or create a special file."""


def _inside(target: Path, name: str) -> bool:
    resolved = (target / name).resolve()
    return resolved == target or target in resolved.parents


def _check_name(archive: Path, target: Path, name: str) -> None:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} is an absolute path")
    if ".." in p.parts or not _inside(target, name):
        raise UnsafeArchiveError(f"{archive}: member {name!r} points outside the target directory")


def _check_tar_member(archive: Path, target: Path, m: tarfile.TarInfo) -> None:
    _check_name(archive, target, m.name)
    if m.issym() or m.islnk():
        link = m.linkname if m.islnk() else str(PurePosixPath(m.name).parent / m.linkname)
        if PurePosixPath(m.linkname).is_absolute() or not _inside(target, link):
            raise UnsafeArchiveError(f"{archive}: link {m.name!r} -> {m.linkname!r} points outside the target")
    elif not (m.isfile() or m.isdir()):
        raise UnsafeArchiveError(f"{archive}: member {m.name!r} is a device, FIFO or other special file")


def safe_extract(archive: str | Path, target: str | Path) -> list[str]:
    """Extract a .tar(.gz/.bz2/.xz) or .zip archive into target; returns the member names."""
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    target = target.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            for info in zf.infolist():
                _check_name(archive, target, info.filename)
                mode = info.external_attr >> 16
                if mode and not (mode & 0o170000 in (0, 0o100000, 0o040000)):
                    raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a link or special file")
            zf.extractall(target)
        return names
    try:
        tf = tarfile.open(archive)
    except tarfile.TarError as e:
        raise UnsafeArchiveError(f"{archive}: not a readable tar or zip archive ({e})") from None
    with tf:
        members = tf.getmembers()
        for m in members:
            _check_tar_member(archive, target, m)
        for m in members:
            tf.extract(m, target, set_attrs=False, filter="data")
    return [m.name for m in members]


def file_digest(path: str | Path, algorithm: str = "md5", block: int = 1 << 20) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def verify_checksum(path: str | Path, expected: str, algorithm: str = "md5") -> None:
    """Raise ValueError naming the file when its digest differs from expected."""
    got = file_digest(path, algorithm)
    if got.lower() != expected.lower():
        raise ValueError(f"{path}: {algorithm} checksum mismatch (expected {expected}, got {got}); "
                         "the file is corrupt or incomplete: delete it and download again")


def download(url: str, dest: str | Path, expected: str | None = None, algorithm: str = "md5") -> Path:
    """Resumable download to dest (a .part file grows until complete, then is renamed) with the
    checksum verified; an existing dest with the right checksum is not downloaded again."""
    dest = Path(dest)
    if dest.exists() and (expected is None or file_digest(dest, algorithm) == expected.lower()):
        return dest
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    with urllib.request.urlopen(request, timeout=60) as response:
        mode = "ab" if start and response.status == 206 else "wb"
        with open(part, mode) as f:
            shutil.copyfileobj(response, f, 1 << 20)
    if expected:
        verify_checksum(part, expected, algorithm)
    os.replace(part, dest)
    return dest
