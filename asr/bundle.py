"""Model bundles: one self-contained folder that a trained model ships in.

    BUNDLE/
      bundle.json   format, version, toolkit version, date, and the size + SHA-256 of every file
      model.pt      weights only (no optimiser state), config, units, feature settings
      decode.yaml   the decode settings the run tuned (decoder, LM weight, word score, ...)
      lm.bin        KenLM binary and its lexicon.txt (char.bin too when the run has one)
      card.json     the model card (asr.model_card): training data, hours, parameters, results;
                    README.md renders it
      results.md    the run's scoring report, when it has one
      model.onnx …  exported forms, added by `asr export`

Everything loads with ``weights_only=True``; a file whose size or checksum differs from
bundle.json is refused by name, so a damaged download fails at load, not as odd output.
This module is the format (write, read, verify, export); ``asr.source`` opens a bundle, a run
folder or a checkpoint as the same ModelSource, and writes a run as a bundle
(``ModelSource.save``).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import yaml

from asr.version import __version__
from asr.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from asr.config import DecodeConfig
from asr.utils import atomic_path, atomic_write_text, file_sha256

log = logging.getLogger(__name__)

FORMAT = "asr-ctc-bundle"
VERSION = 1
INDEX = "bundle.json"
MODEL = "model.pt"
DECODE = "decode.yaml"
LM_FILES = ("lm.bin", "lexicon.txt", "char.bin")
# checkpoint keys a decoder needs; the rest (optimiser, scheduler, rng, counters) stay behind
MODEL_KEYS = ("model", "config", "vocab", "n_feats", "units_model", "units_lexicon", "averaged_from")
CONFIG_SECTIONS = ("model", "features", "data")


class BundleError(ValueError):
    """A bundle that cannot be used; the message names the file and why."""


# ---------------------------------------------------------------- writing

def weights_only(ckpt: dict) -> dict:
    """The parts of a checkpoint that decoding needs (a 60 MB training checkpoint becomes ~20 MB)."""
    out = {k: ckpt[k] for k in MODEL_KEYS if k in ckpt}
    out["config"] = {k: v for k, v in (ckpt.get("config") or {}).items() if k in CONFIG_SECTIONS}
    return out


def _copy(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _decode_section(decode: DecodeConfig, lm_names: set[str]) -> dict:
    """decode.yaml of a bundle: the tuned settings, LM paths left empty (resolved at load)."""
    values = dataclasses.asdict(decode)
    values.update(lm_path="", lexicon_path="", hotwords_file="")
    values["decoder"] = "beam_lm" if {"lm.bin", "lexicon.txt"} <= lm_names else "greedy"
    return values


def write_index(folder: Path, extra: dict | None = None) -> dict:
    """(Re)write bundle.json with the size and SHA-256 of every file in the folder."""
    old = read_index(folder) if (folder / INDEX).is_file() else {}
    files = {p.name: {"bytes": p.stat().st_size, "sha256": file_sha256(p)}
             for p in sorted(folder.iterdir()) if p.is_file() and p.name != INDEX}
    index = {"format": FORMAT, "version": VERSION, "toolkit": __version__,
             "created": old.get("created") or datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             **(extra or {}), "files": files}
    atomic_write_text(folder / INDEX, json.dumps(index, indent=1) + "\n")
    return index


def write_bundle(out: str | Path, ckpt: dict, decode: DecodeConfig, lm_files: dict[str, Path],
                 card: dict, readme: str, report: Path | None = None) -> dict:
    """Write a bundle into the folder `out`: the checkpoint's weights, the decode settings, the
    LM files ({name in LM_FILES: path}), the model card (card.json, README.md) and the scoring
    report. ModelSource.save gathers these from a run (`asr bundle`).

    The bundle is made in a new folder beside `out` and then takes its place, so nothing of a
    previous bundle there (an exported model.onnx, an lm.bin) survives into the new one, and a
    failure leaves the previous bundle whole. A folder that is not a bundle is not replaced.
    Returns bundle.json's dict.
    """
    out = Path(out)
    _check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    os.chmod(new, 0o777 & ~_umask())  # mkdtemp's 0700 would leave the bundle unreadable to others
    try:
        save_checkpoint(weights_only(ckpt), new / MODEL)
        for name, path in lm_files.items():
            _copy(path, new / name)
        atomic_write_text(new / DECODE, yaml.safe_dump({"decode": _decode_section(decode, set(lm_files))},
                                                       sort_keys=False))
        if report is not None:
            _copy(report, new / "results.md")
        atomic_write_text(new / "card.json", json.dumps(card, indent=1) + "\n")
        atomic_write_text(new / "README.md", readme)
        index = write_index(new)
        _replace_folder(new, out)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    return index


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_replaceable(out: Path) -> None:
    """BundleError unless `out` is absent, an empty folder or a bundle (which is replaced)."""
    if out.exists() and not out.is_dir():
        raise BundleError(f"{out}: is a file; give a folder to write the bundle into")
    if out.is_dir() and not is_bundle(out) and any(out.iterdir()):
        raise BundleError(f"{out}: not a bundle (no {INDEX}) and not empty: give a new or empty "
                          "folder to write the bundle into")


def _replace_folder(new: Path, out: Path) -> None:
    """Put the finished folder `new` at `out`; a previous `out` is removed only once `new` is
    in its place (put back if that fails)."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        new.rename(out)
        return
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    out.rename(old)
    try:
        new.rename(out)
    except OSError:
        old.rename(out)
        raise
    log.info("%s: replaced the previous bundle", out)
    shutil.rmtree(old)


# ---------------------------------------------------------------- reading

def read_index(folder: Path) -> dict:
    path = folder / INDEX
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BundleError(f"{path}: cannot read the bundle index ({e})") from None
    if index.get("format") != FORMAT:
        raise BundleError(f"{path}: not an {FORMAT} index")
    if int(index.get("version", 0)) > VERSION:
        raise BundleError(f"{path}: bundle version {index['version']} is newer than this toolkit "
                          f"reads ({VERSION}); upgrade asr-ctc")
    return index


def is_bundle(path: str | Path) -> bool:
    return (Path(path) / INDEX).is_file()


def verify_bundle(folder: str | Path) -> dict:
    """Check every file bundle.json lists against its size and SHA-256; raise BundleError naming
    the first missing or damaged file. Returns the index."""
    folder = Path(folder)
    index = read_index(folder)
    for name, meta in index["files"].items():
        path = folder / name
        if not path.is_file():
            raise BundleError(f"{path}: missing from the bundle (listed in {INDEX})")
        if path.stat().st_size != meta["bytes"] or file_sha256(path) != meta["sha256"]:
            raise BundleError(f"{path}: damaged: its size or checksum differs from {INDEX} "
                              "(re-download the bundle or re-create it with `asr bundle`)")
    return index


def read_bundle(folder: str | Path, verify: bool = True) -> tuple[dict, DecodeConfig]:
    """(checkpoint dict, decode settings) of a bundle, its LM paths those of its own files;
    verify: check every file against bundle.json first (BundleError naming a bad one)."""
    folder = Path(folder)
    if verify:
        verify_bundle(folder)
    else:
        read_index(folder)
    try:
        ckpt = load_checkpoint(folder / MODEL)
    except CheckpointError as e:
        raise BundleError(str(e)) from None
    values = yaml.safe_load((folder / DECODE).read_text(encoding="utf-8")) if (folder / DECODE).is_file() else {}
    names = {f.name for f in dataclasses.fields(DecodeConfig)}
    decode = DecodeConfig(**{k: v for k, v in (values or {}).get("decode", {}).items() if k in names})
    # the LM files are always the bundle's own (decode.yaml leaves their paths empty)
    return ckpt, dataclasses.replace(decode, lm_path=str(folder / "lm.bin"),
                                     lexicon_path=str(folder / "lexicon.txt"))


# ---------------------------------------------------------------- exported forms

EXPORTED = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx", "torchscript": "model.ts"}


def export_metadata(ckpt: dict, vocab, subsample: int) -> dict:
    """What a runtime needs besides the network: units, blank, subsampling, feature settings."""
    return {"toolkit": f"asr-ctc {__version__}", "vocabulary": json.dumps(list(vocab.tokens)),
            "blank": str(vocab.blank), "subsample": str(subsample),
            "features": json.dumps(ckpt["config"].get("features", {}))}


def export_bundle(folder: str | Path, fmt: str, int8: bool = False) -> list[Path]:
    """Write the bundle's network as ONNX (and int8 ONNX) or TorchScript into the bundle and
    re-index it; the paths written."""
    from asr import export
    from asr.checkpoint import model_from_checkpoint
    folder = Path(folder)
    ckpt, _ = read_bundle(folder)
    model, vocab, _ = model_from_checkpoint(ckpt)
    meta = export_metadata(ckpt, vocab, model.cfg.subsample)
    written = []
    if fmt == "onnx":
        export.export_onnx(model, folder / EXPORTED["onnx"], meta)
        written.append(folder / EXPORTED["onnx"])
        if int8:
            export.quantize_int8(folder / EXPORTED["onnx"], folder / EXPORTED["onnx-int8"])
            written.append(folder / EXPORTED["onnx-int8"])
    elif fmt == "torchscript":
        if int8:
            raise ValueError("--int8 is for ONNX (dynamic quantisation with onnxruntime)")
        export.export_torchscript(model, folder / EXPORTED["torchscript"], meta)
        written.append(folder / EXPORTED["torchscript"])
    else:
        raise ValueError(f"unknown export format {fmt!r} (onnx, torchscript)")
    write_index(folder)
    return written
