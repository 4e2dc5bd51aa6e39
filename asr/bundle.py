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
The same ``ModelSource`` is made from a bundle, a run folder or a checkpoint file: callers
(the CLI, ``asr.load``) need not know which they were given.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from asr import __version__
from asr.checkpoint import CheckpointError, find_checkpoint, load_checkpoint, save_checkpoint
from asr.config import DecodeConfig
from asr.model_card import model_card, render_card
from asr.utils import atomic_path, atomic_write_text, file_sha256
from asr.run_folder import RunFolder

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


@dataclass
class ModelSource:
    """What a transcriber needs, from wherever the model came.

    checkpoint: the checkpoint dict (weights, config, vocabulary).
    decode: decode settings with LM/lexicon paths resolved (the files may be missing: missing_lm).
    kind: "bundle", "run" or "checkpoint"; path: what was given; folder: the bundle or run folder.
    lm_expected: the settings name an LM (decoder beam_lm, an LM folder or file, tuned LM
    weights): without its files the model decodes worse than it was made to, which is said.
    """

    checkpoint: dict
    decode: DecodeConfig
    kind: str
    path: Path
    folder: Path | None = None
    lm_expected: bool = False

    def missing_lm(self) -> str | None:
        """The first of the LM and lexicon files that is not there (None: both are)."""
        for key in ("lm_path", "lexicon_path"):
            value = getattr(self.decode, key)
            if not value or not Path(value).is_file():
                return value or f"(decode.{key} not set)"
        return None

    @property
    def has_lm(self) -> bool:
        return self.missing_lm() is None

    def best_decoder(self) -> str:
        """beam + LM when the model came with an LM, else greedy (with a warning naming the
        missing file when its settings name an LM)."""
        missing = self.missing_lm()
        if missing is None:
            return "beam_lm"
        if self.lm_expected:
            log.warning("%s: the language model it was made with is missing (%s): decoding greedily; "
                        "build it (`asr lm build`) or give one (--lm)", self.path, missing)
        return "greedy"


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


def write_bundle(run: str | Path, out: str | Path, which: str = "best",
                 lm_dir: str | Path | None = None, fallback: bool = True) -> dict:
    """Bundle a run folder's <which> checkpoint, its LM and tuned decode settings into `out`.

    lm_dir: the LM folder (default: the one the run's config names). fallback: as
    find_checkpoint (best.pt missing: last.pt with a warning, or CheckpointError).
    The bundle is made in a new folder beside `out` and then takes its place, so nothing of a
    previous bundle there (an exported model.onnx, an lm.bin) survives into the new one, and a
    failure leaves the previous bundle whole. A folder that is not a bundle is not replaced.
    Returns bundle.json's dict.
    """
    run, out = Path(run), Path(out)
    _check_replaceable(out)
    path = find_checkpoint(run, which, fallback)
    ckpt = load_checkpoint(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        index = _fill_bundle(new, run, path, ckpt, lm_dir)
        _replace_folder(new, out)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    return index


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


def _fill_bundle(out: Path, run: Path, path: Path, ckpt: dict, lm_dir: str | Path | None) -> dict:
    """Write the bundle's files into the (new, empty) folder out; bundle.json's dict."""
    from asr.decoding.tuning import saved_run_config
    from asr.model import count_parameters
    from asr.checkpoint import model_from_checkpoint
    cfg = saved_run_config(run)
    decode = run_decode_settings(run, cfg)
    lm = Path(lm_dir) if lm_dir else (Path(decode.lm_path).parent if decode.lm_path else None)
    save_checkpoint(weights_only(ckpt), out / MODEL)
    lm_names = set()
    for name in LM_FILES:
        if lm is not None and (lm / name).is_file():
            _copy(lm / name, out / name)
            lm_names.add(name)
    if lm is not None and not {"lm.bin", "lexicon.txt"} <= lm_names:
        log.warning("%s: no lm.bin + lexicon.txt; the bundle decodes greedily", lm)
    atomic_write_text(out / DECODE, yaml.safe_dump({"decode": _decode_section(decode, lm_names)},
                                                   sort_keys=False))
    if RunFolder(run).report.is_file():
        _copy(RunFolder(run).report, out / "results.md")
    model, vocab, _ = model_from_checkpoint(ckpt)
    card = model_card(run, ckpt, cfg, count_parameters(model), len(vocab), lm_names)
    card["checkpoint"] = path.name
    atomic_write_text(out / "card.json", json.dumps(card, indent=1) + "\n")
    atomic_write_text(out / "README.md", render_card(card, RunFolder(run).report))
    return write_index(out)


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


def load_bundle(folder: str | Path, verify: bool = True) -> ModelSource:
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
    decode = dataclasses.replace(decode, lm_path=str(folder / "lm.bin"),
                                 lexicon_path=str(folder / "lexicon.txt"))
    return ModelSource(ckpt, decode, "bundle", folder, folder, lm_expected=decode.decoder == "beam_lm")


def run_decode_settings(run: Path | None, cfg=None) -> DecodeConfig:
    """A run's decode section (recipe, then its tuned decode.yaml) with LM paths resolved;
    cfg: the run's saved_run_config, when the caller has it."""
    from asr.decoding.decoders import resolve_lm_paths
    from asr.decoding.lm import lm_paths
    from asr.decoding.tuning import saved_run_config
    cfg = cfg or saved_run_config(run)
    if run is None:
        return cfg.decode
    # resolved as for beam_lm (word LM + lexicon); which decoder runs is the caller's choice
    lm_cfg = dataclasses.replace(cfg.decode, decoder="beam_lm")
    resolved = resolve_lm_paths(lm_cfg, lm_paths(cfg)["dir"])
    return dataclasses.replace(resolved, decoder=cfg.decode.decoder)


def names_lm(run: Path, cfg) -> bool:
    """Whether a run's saved settings (cfg: saved_run_config) name an LM: decoder beam_lm, an
    LM folder or file, or LM weights tuned by `asr tune-lm`."""
    return (cfg.decode.decoder == "beam_lm" or bool(cfg.lm.dir or cfg.decode.lm_path)
            or RunFolder(run).tuned.is_file())


CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


def model_source(path: str | Path, verify: bool = True) -> ModelSource:
    """A ModelSource from a bundle folder, a run folder or a checkpoint file; BundleError
    naming the path when it is none of them."""
    from asr.decoding.tuning import run_folder, saved_run_config
    path = Path(path)
    if not path.exists():
        raise BundleError(f"{path}: no such bundle, run folder or checkpoint")
    if is_bundle(path):
        return load_bundle(path, verify)
    if path.is_dir() and not RunFolder(path).checkpoints.is_dir():
        raise BundleError(f"{path}: neither a bundle (no {INDEX}) nor a run folder (no checkpoints/): "
                          "give a folder made by `asr bundle`, a training run folder (train.exp_dir) "
                          "or a checkpoint file")
    if path.is_file() and path.suffix not in CHECKPOINT_SUFFIXES and not zipfile.is_zipfile(path):
        # an audio file given first, say: `asr transcribe a.wav RUN`
        raise BundleError(f"{path}: not a model (bundle folder, run folder or .pt checkpoint); "
                          "usage: asr transcribe MODEL FILE...")
    run = run_folder(path)
    ckpt = load_checkpoint(path)
    cfg = saved_run_config(run)
    return ModelSource(ckpt, run_decode_settings(run, cfg), "run" if path.is_dir() else "checkpoint",
                       path, run, lm_expected=run is not None and names_lm(run, cfg))


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
    source = load_bundle(folder)
    model, vocab, _ = model_from_checkpoint(source.checkpoint)
    meta = export_metadata(source.checkpoint, vocab, model.cfg.subsample)
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
