"""The real recorded corpora of the built-in mixture (builtin.real): each found in its Debian
game-data package and imported once with its own importer (data_prep/<corpus>.py).

1. fetch: each corpus's package is found in data.source (a folder of .debs) or
   <root>/download/debs, else fetched there with `apt-get download` (no root needed);
2. import: the importer writes <root>/real/<corpus>/, once; its entries are gathered into
   manifests/all_real.jsonl with ids and speakers prefixed by the corpus ("queen:LOLA"), so
   speakers of different games never merge.
"""

from __future__ import annotations

import copy
import importlib
import os
import subprocess
import tempfile
from pathlib import Path

from asr.data.manifest import read_manifest, write_manifest
from asr.utils import atomic_write_text

REAL_SOURCES = ("queen", "hedgewars", "ktuberling", "tuxpaint", "warzone2100")


def debian_package(corpus: str) -> str:
    """The Debian package that holds a real corpus (its importer's DEBIAN_PACKAGE)."""
    if corpus not in REAL_SOURCES:
        raise ValueError(f"builtin.real: unknown corpus {corpus!r} (real corpora: "
                         f"{', '.join(REAL_SOURCES)})")
    return importlib.import_module(f"data_prep.{corpus}").DEBIAN_PACKAGE


def fetch_package(package: str, folders: list[Path]) -> Path:
    """The package's .deb from the first folder that has it, else `apt-get download` into the
    last folder (through a temporary folder, so a broken download is never taken as done)."""
    for folder in folders:
        found = sorted(folder.glob(f"{package}_*.deb")) if folder.is_dir() else []
        if found:
            return found[-1]
    target = folders[-1]
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target, prefix=".download-") as tmp:
        try:
            subprocess.run(["apt-get", "download", package], cwd=tmp, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except (OSError, subprocess.CalledProcessError) as e:
            detail = getattr(e, "stderr", b"") or str(e).encode()
            raise RuntimeError(
                f"could not fetch {package}: {detail.decode(errors='replace').strip()[-300:]}\n"
                f"download it yourself (apt-get download {package}) into {target} or into the "
                "folder data.source names") from None
        (deb,) = Path(tmp).glob("*.deb")
        os.replace(deb, target / deb.name)
    return target / deb.name



def import_corpus(cfg, corpus: str, deb: Path, progress: bool) -> list[dict]:
    """The corpus's entries (its importer run once into <root>/real/<corpus>/), with ids and
    speakers prefixed by the corpus and audio paths relative to <root>/manifests."""
    sub = copy.deepcopy(cfg)
    sub.data.root = str(Path(cfg.data.root) / "real" / corpus)
    sub.data.corpus, sub.data.source, sub.builtin.real = corpus, str(deb), {}
    sub_manifests = Path(sub.data.root) / "manifests"
    stamp = Path(sub.data.root) / ".imported"
    if not stamp.exists() or stamp.read_text() != deb.name:
        summary = importlib.import_module(f"data_prep.{corpus}").prepare(sub, progress=progress)
        summary.write_rejects(sub_manifests / "rejected.tsv")
        print("\n".join(summary.lines(rejects_file=sub_manifests / "rejected.tsv")), flush=True)
        atomic_write_text(stamp, deb.name)
    mdir = Path(cfg.data.root) / "manifests"
    entries = []
    for e in read_manifest(sub_manifests / "all.jsonl"):
        e = dict(e, id=f"{corpus}-{e['id']}", speaker=f"{corpus}:{e.get('speaker', '')}")
        e["audio_filepath"] = os.path.relpath(e["audio_filepath"], mdir)
        entries.append(e)
    return entries


def import_real(cfg, progress: bool) -> list[dict]:
    """Every corpus of builtin.real, fetched and imported; written to manifests/all_real.jsonl."""
    root = Path(cfg.data.root)
    folders = ([Path(cfg.data.source)] if cfg.data.source else []) + [root / "download" / "debs"]
    entries = []
    for corpus in cfg.builtin.real:
        deb = fetch_package(debian_package(corpus), folders)
        entries += import_corpus(cfg, corpus, deb, progress)
    write_manifest(root / "manifests" / "all_real.jsonl", entries)
    return entries
