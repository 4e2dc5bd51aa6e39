"""LibriSpeech (OpenSLR 12): download / verify / extract, FLAC + *.trans.txt -> manifests.

data.source is a folder holding any of: the extracted corpus (``LibriSpeech/<subset>/`` or the
subset folders themselves), the archives ``<subset>.tar.gz`` (verified against the published
md5 sums, then extracted safely: no member may leave the folder), and the normalised LM text
``librispeech-lm-norm.txt[.gz]`` (OpenSLR 11). With data.download=true missing archives are
downloaded into it (resumable: a ``.part`` file grows until complete). Without data.source,
``<data.root>/download`` is used.

Layout read (one chapter)::

    LibriSpeech/train-clean-100/19/198/19-198.trans.txt     "19-198-0001 NORTHANGER ABBEY ..."
    LibriSpeech/train-clean-100/19/198/19-198-0001.flac

Splits written to <data.root>/manifests/: ``train`` (the train-* subsets of data.subsets, in
order), ``dev_clean``, ``dev_other``, ``test_clean``, ``test_other``; ``train_text.txt`` (the
training transcripts) and ``lm_text.txt`` (when the LM text is there). Entries carry
``speaker`` (reader id) and ``subset`` (e.g. train-clean-360).
"""

from __future__ import annotations

import gzip
import itertools
import logging
import re
import sys
from pathlib import Path

from asr.data.archive import download as download_file
from asr.data.archive import safe_extract, verify_checksum
from asr.text.normalize import normalize_text
from asr.data.checks import BAD_UTF8, Checks, NO_TRANSCRIPT, Summary
from asr.utils import atomic_open, atomic_write_text

from .common import list_dir, prepare_splits

log = logging.getLogger(__name__)

BASE_URL = "https://www.openslr.org/resources/12"
LM_NAME = "librispeech-lm-norm.txt.gz"
LM_BASE_URL = "https://www.openslr.org/resources/11"  # publishes no checksum for the LM text

# From https://www.openslr.org/resources/12/md5sum.txt
MD5 = {
    "dev-clean": "42e2234ba48799c1f50f24a7926300a1",
    "dev-other": "c8d0bcc9cca99d4f8b62fcc847357931",
    "test-clean": "32fa31d27d2e1cad72775fee3f4849a9",
    "test-other": "fb5a50374b501bb3bac4815ee91d3135",
    "train-clean-100": "2a93770f6d5c6c964bc36631d331a522",
    "train-clean-360": "c0e676e450a7ff2f54aeade5171606fa",
    "train-other-500": "d1a0fd59409feb2c614ce4d30c387708",
}
TRAIN_SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500")
EVAL_SUBSETS = ("dev-clean", "dev-other", "test-clean", "test-other")
DEFAULT_SUBSETS = ["train-clean-100", *EVAL_SUBSETS]


def split_name(subset: str) -> str:
    """train-* -> train (concatenated); dev-clean -> dev_clean, ..."""
    return "train" if subset.startswith("train-") else subset.replace("-", "_")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def find_subset(source: Path, subset: str) -> Path | None:
    for cand in (source / "LibriSpeech" / subset, source / subset):
        if cand.is_dir():
            return cand
    return None


def ensure_subset(source: Path, subset: str, download: bool = False, mirror: str = "") -> Path:
    """The extracted folder of subset under source: used as found, else extracted from
    source/<subset>.tar.gz (md5-checked), downloaded first when download is set."""
    archive = source / f"{subset}.tar.gz"
    stamp = source / "LibriSpeech" / f".{subset}.extracted"
    found = find_subset(source, subset)
    if found and (stamp.exists() or not archive.exists()):
        return found
    verified = False
    if not archive.exists():
        if not download:
            raise FileNotFoundError(
                f"librispeech: subset {subset} not found in {source}: expected "
                f"{source}/LibriSpeech/{subset}/ or {archive.name} there; set data.download=true "
                f"to download it (data.source is where it goes)")
        url = f"{(mirror or BASE_URL).rstrip('/')}/{subset}.tar.gz"
        _say(f"librispeech: downloading {url} -> {archive}")
        source.mkdir(parents=True, exist_ok=True)
        download_file(url, archive, MD5.get(subset))
        verified = True
    if not verified and subset in MD5:
        _say(f"librispeech: checking the md5 sum of {archive}")
        verify_checksum(archive, MD5[subset])
    _say(f"librispeech: extracting {archive}")
    safe_extract(archive, source)
    found = find_subset(source, subset)
    if found is None:
        raise FileNotFoundError(f"librispeech: {archive} holds no {subset}/ folder")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stamp, MD5.get(subset, "") + "\n")
    return found


def subset_items(subset_dir: Path, subset: str):
    """Items of one subset: speaker/chapter folders in order, lines of each *.trans.txt."""
    for spk in list_dir(subset_dir):
        if not spk.is_dir():
            continue
        for chap in list_dir(spk.path):
            if not chap.is_dir():
                continue
            chap_dir = Path(chap.path)
            names = [e.name for e in list_dir(chap_dir)]
            trans = chap_dir / f"{spk.name}-{chap.name}.trans.txt"
            seen = set()
            if trans.is_file():
                for lineno, raw in enumerate(trans.read_bytes().splitlines(), 1):
                    uid_b, _, text_b = raw.strip().partition(b" ")
                    if not uid_b:
                        continue
                    uid = uid_b.decode("ascii", "replace")
                    seen.add(uid)
                    item = {"id": uid, "audio": str(chap_dir / f"{uid}.flac"), "speaker": spk.name,
                            "subset": subset}
                    try:
                        item["text"] = text_b.decode("utf-8")
                    except UnicodeDecodeError as e:
                        item["reject"] = (BAD_UTF8, f"{trans.name}:{lineno}: byte at offset {e.start}")
                    yield item
            for name in names:
                if name.endswith(".flac") and name[:-5] not in seen:
                    yield {"id": name[:-5], "audio": str(chap_dir / name),
                           "reject": (NO_TRANSCRIPT, f"no line for it in {trans.name}")}


def find_lm_text(source: Path) -> Path | None:
    for d in (source, source / "LibriSpeech"):
        for name in (LM_NAME, LM_NAME[:-3]):
            if (d / name).is_file():
                return d / name
    return None


_CLEAN = re.compile(r"^[A-Z' ]+$")


def write_lm_text(src: Path, out: Path) -> int:
    """Stream the LM text (gz or plain) into out, normalised like the transcripts; skipped when
    out is newer than src. Returns the number of sentences (-1 when skipped)."""
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return -1
    n = 0
    opener = gzip.open if src.name.endswith(".gz") else open
    with opener(src, "rt", encoding="utf-8", errors="replace") as f, atomic_open(out) as w:
        for line in f:
            line = line.strip()
            text = line.lower() if _CLEAN.match(line) else normalize_text(line)
            if text:
                w.write(text + "\n")
                n += 1
    return n


def lm_text(cfg, source: Path, root: Path, summary: Summary) -> None:
    src = find_lm_text(source)
    if src is None and cfg.data.download and cfg.data.lm_text:
        base = cfg.data.mirror.rstrip("/")
        base = base[:-3] + "/11" if base.endswith("/12") else LM_BASE_URL
        src = source / LM_NAME
        _say(f"librispeech: downloading {base}/{LM_NAME} (no published checksum)")
        download_file(f"{base}/{LM_NAME}", src)
    if src is None:
        if cfg.data.lm_text:
            summary.note(f"note: no {LM_NAME} in {source}: manifests/lm_text.txt not written")
        return
    out = root / "manifests" / "lm_text.txt"
    n = write_lm_text(src, out)
    summary.note(f"LM text: {out} ({'up to date' if n < 0 else f'{n} sentences'}, from {src})")


def prepare(cfg, progress: bool = True, summary: Summary | None = None) -> Summary:
    """Prepare the LibriSpeech subsets of cfg.data.subsets; returns the summary."""
    root = Path(cfg.data.root)
    subsets = list(cfg.data.subsets or DEFAULT_SUBSETS)
    unknown = [s for s in subsets if s not in MD5]
    if unknown:
        raise ValueError(f"librispeech: unknown subset(s) {unknown} (known: {', '.join(MD5)})")
    source = Path(cfg.data.source).expanduser() if cfg.data.source else root / "download"
    if not source.exists() and not cfg.data.download:
        raise FileNotFoundError(f"librispeech: data.source {source} does not exist "
                                "(make data RECIPE=librispeech_100 DATA=/path/to/LibriSpeech-parent)")
    dirs = {s: ensure_subset(source, s, cfg.data.download, cfg.data.mirror) for s in subsets}
    summary = summary or Summary("librispeech")
    splits = {}
    train = [s for s in subsets if s.startswith("train-")]
    if train:
        splits["train"] = lambda: itertools.chain.from_iterable(subset_items(dirs[s], s) for s in train)
    for s in subsets:
        if not s.startswith("train-"):
            splits[split_name(s)] = (lambda s=s: subset_items(dirs[s], s))
    prepare_splits(root, splits, Checks.from_config(cfg), summary, cfg.data.nj, progress)
    lm_text(cfg, source, root, summary)
    return summary
