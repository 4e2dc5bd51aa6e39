"""Which model, with which settings: the one answer every entry point asks for.

A model is named by a path (a bundle folder, a run folder or a checkpoint file:
:func:`model_source`) or, for the recipe commands, by a recipe and its overrides
(:func:`recipe_source`). Either way the answer is a :class:`ModelSource`: the checkpoint, and
the decode settings layered once

    recipe (or the run's saved config)  ->  the run's tuned decode.yaml  ->  overrides

with the LM and lexicon paths resolved. `asr transcribe`, ``asr.load``, `asr decode`,
`asr tune-lm`, the benchmarks and streaming ask it; :meth:`ModelSource.save` writes it as a
bundle. Nothing else layers decode settings or works out where the LM is.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from asr import bundle
from asr.checkpoint import find_checkpoint, load_checkpoint, model_from_checkpoint
from asr.config import Config, DecodeConfig, apply, load_config, parse_overrides
from asr.decoding.decoders import resolve_lm_paths
from asr.decoding.lm import lm_paths
from asr.decoding.tuning import load_tuned
from asr.run_folder import RunFolder

log = logging.getLogger(__name__)

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


@dataclass
class ModelSource:
    """A model and the settings it decodes with, from wherever it came.

    checkpoint: the checkpoint dict (weights, config, vocabulary).
    decode: decode settings with LM/lexicon paths resolved (the files may be missing: missing_lm).
    kind: "bundle", "run" or "checkpoint"; path: what was given; folder: the bundle or run folder.
    lm_expected: the settings name an LM (decoder beam_lm, an LM folder or file, tuned LM
    weights): without its files the model decodes worse than it was made to, which is said.
    checkpoint_path: the file the weights came from. config: the run's settings (its saved
    config or the recipe), None for a bundle or a checkpoint outside a run.
    """

    checkpoint: dict
    decode: DecodeConfig
    kind: str
    path: Path
    folder: Path | None = None
    lm_expected: bool = False
    checkpoint_path: Path | None = None
    config: Config | None = None

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

    def with_settings(self, decoder: str | None = None, lm: str | Path | None = None,
                      extra_hotwords: list[str] | tuple = (), **fields) -> "ModelSource":
        """A copy decoding with this model's settings, then `fields` (DecodeConfig fields; None
        values are left out), `extra_hotwords` added to the hotwords, and `lm` (an LM folder
        with lm.bin + lexicon.txt, or a KenLM file: its lexicon from lexicon_path or beside it).
        The decoder is `decoder`, else beam_lm when `lm` is given, else the best the model has."""
        d = dataclasses.replace(self.decode, **{k: v for k, v in fields.items() if v is not None})
        if extra_hotwords:
            d = dataclasses.replace(d, hotwords=list(d.hotwords) + list(extra_hotwords))
        if lm:
            lm = Path(lm)
            d = dataclasses.replace(d, decoder="beam_lm", lm_path="" if lm.is_dir() else str(lm),
                                    lexicon_path=fields.get("lexicon_path") or "")
            d = resolve_lm_paths(d, lm if lm.is_dir() else lm.parent)
        source = dataclasses.replace(self, decode=d)
        decoder = decoder or ("beam_lm" if lm else source.best_decoder())
        return dataclasses.replace(source, decode=dataclasses.replace(d, decoder=decoder))

    def network(self, engine: str = "torch", device="cpu"):
        """(network, vocabulary, feature settings, subsampling): the PyTorch model on device, or
        a form exported into the bundle (`asr export`): "onnx", "onnx-int8" (onnxruntime, CPU)
        or "torchscript"."""
        model, vocab, feat_cfg = model_from_checkpoint(self.checkpoint)
        if engine == "torch":
            return model.to(device), vocab, feat_cfg, model.cfg.subsample
        if engine not in bundle.EXPORTED:
            raise ValueError(f"unknown engine {engine!r} (known: torch, {', '.join(bundle.EXPORTED)})")
        from asr import export
        path = (self.folder or Path(".")) / bundle.EXPORTED[engine]
        if self.kind != "bundle" or not path.is_file():
            raise FileNotFoundError(f"{path}: no {engine} model; make one with "
                                    f"`asr export BUNDLE --format {engine.split('-')[0]}"
                                    f"{' --int8' if engine == 'onnx-int8' else ''}`")
        if engine == "torchscript":
            net, _ = export.load_torchscript(path)
            return net.to(device), vocab, feat_cfg, model.cfg.subsample
        return export.OnnxAcousticModel(path), vocab, feat_cfg, model.cfg.subsample

    def save(self, out: str | Path, lm_dir: str | Path | None = None) -> dict:
        """Write this run's model as a bundle folder `out` (asr.bundle.write_bundle): its
        weights, the LM of lm_dir (default: the one its settings name), its tuned settings and
        model card. Returns bundle.json's dict."""
        from asr.model import count_parameters
        from asr.model_card import model_card, render_card
        if self.kind == "bundle" or self.folder is None:
            raise bundle.BundleError(f"{self.path}: not a training run: `asr bundle` takes a run "
                                     "folder (train.exp_dir) or a checkpoint inside one")
        run = RunFolder(self.folder)
        lm = Path(lm_dir) if lm_dir else (Path(self.decode.lm_path).parent if self.decode.lm_path else None)
        lm_files = {name: lm / name for name in bundle.LM_FILES if lm is not None and (lm / name).is_file()}
        if lm is not None and not {"lm.bin", "lexicon.txt"} <= set(lm_files):
            log.warning("%s: no lm.bin + lexicon.txt; the bundle decodes greedily", lm)
        model, vocab, _ = model_from_checkpoint(self.checkpoint)
        card = model_card(self.folder, self.checkpoint, self.config or Config(), count_parameters(model),
                          len(vocab), set(lm_files))
        card["checkpoint"] = self.checkpoint_path.name if self.checkpoint_path else ""
        report = run.report if run.report.is_file() else None
        return bundle.write_bundle(out, self.checkpoint, self.decode, lm_files, card,
                                   render_card(card, run.report), report)


# ---------------------------------------------------------------- from a path

def model_source(path: str | Path, verify: bool = True, which: str = "best",
                 fallback: bool = True) -> ModelSource:
    """A ModelSource from a bundle folder, a run folder (its checkpoints/<which>.pt: see
    find_checkpoint for fallback) or a checkpoint file; BundleError naming the path when it is
    none of them. verify: check a bundle's files against its checksums."""
    path = Path(path)
    if not path.exists():
        raise bundle.BundleError(f"{path}: no such bundle, run folder or checkpoint")
    if bundle.is_bundle(path):
        ckpt, decode = bundle.read_bundle(path, verify)
        return ModelSource(ckpt, decode, "bundle", path, path, lm_expected=decode.decoder == "beam_lm",
                           checkpoint_path=path / bundle.MODEL)
    if path.is_dir() and not RunFolder(path).checkpoints.is_dir():
        raise bundle.BundleError(f"{path}: neither a bundle (no {bundle.INDEX}) nor a run folder (no "
                                 "checkpoints/): give a folder made by `asr bundle`, a training run "
                                 "folder (train.exp_dir) or a checkpoint file")
    if path.is_file() and path.suffix not in CHECKPOINT_SUFFIXES and not zipfile.is_zipfile(path):
        # an audio file given first, say: `asr transcribe a.wav RUN`
        raise bundle.BundleError(f"{path}: not a model (bundle folder, run folder or .pt checkpoint); "
                                 "usage: asr transcribe MODEL FILE...")
    run = run_of(path)
    file = find_checkpoint(path, which, fallback) if path.is_dir() else path
    cfg = saved_run_config(run)
    return ModelSource(load_checkpoint(file), lm_settings(cfg) if run else cfg.decode,
                       "run" if path.is_dir() else "checkpoint", path, run,
                       lm_expected=run is not None and names_lm(run, cfg), checkpoint_path=file,
                       config=cfg if run else None)


def run_of(model: str | Path) -> Path | None:
    """The run folder of a model argument: the folder itself, or <run>/checkpoints/x.pt's run."""
    model = Path(model)
    if model.is_dir():
        return model
    return model.parent.parent if model.parent == RunFolder(model.parent.parent).checkpoints else None


def names_lm(run: Path, cfg: Config) -> bool:
    """Whether a run's saved settings (cfg: saved_run_config) name an LM: decoder beam_lm, an
    LM folder or file, or LM weights tuned by `asr tune-lm`."""
    return (cfg.decode.decoder == "beam_lm" or bool(cfg.lm.dir or cfg.decode.lm_path)
            or RunFolder(run).tuned.is_file())


# ---------------------------------------------------------------- from a recipe

def recipe_config(config: str | Path | None, overrides: list[str] | None) -> Config:
    """Recipe defaults, then the run's tuned decode.yaml, then the command-line overrides
    (which also say which run: train.exp_dir)."""
    cfg = load_config(config, overrides)
    load_tuned(cfg)
    if overrides:
        apply(cfg, parse_overrides(overrides), "command line")
    return cfg


def recipe_source(config: str | Path | None, overrides: list[str] | None,
                  decoder: str | None = None) -> ModelSource:
    """The ModelSource of a recipe's run (train.exp_dir, its decode.checkpoint) with the
    settings of recipe_config; decoder: instead of the recipe's decode.decoder."""
    cfg = recipe_config(config, overrides)
    if decoder:
        cfg.decode.decoder = decoder
    run = Path(cfg.train.exp_dir)
    path = find_checkpoint(run, cfg.decode.checkpoint)
    return ModelSource(load_checkpoint(path), lm_settings(cfg), "run", run, run,
                       lm_expected=names_lm(run, cfg), checkpoint_path=path, config=cfg)


def lm_settings(cfg: Config, decode: DecodeConfig | None = None) -> DecodeConfig:
    """decode (default cfg.decode) with its empty LM/lexicon paths filled from cfg's lm section
    (lm.dir, default <data.root>/lm); resolved as beam + LM reads them whatever the decoder,
    so best_decoder can tell whether the LM is there."""
    decode = decode or cfg.decode
    probe = decode if decode.decoder == "beam_lm" else dataclasses.replace(decode, decoder="beam_lm")
    return dataclasses.replace(resolve_lm_paths(probe, lm_paths(cfg)["dir"]), decoder=decode.decoder)


# ---------------------------------------------------------------- a run's saved settings

# the paths of a run's config that saved_run_config reads: absolute wherever the run is used from
RUN_PATHS = {"data": ("root",), "lm": ("dir", "text"), "decode": ("lm_path", "lexicon_path", "hotwords_file")}


def saved_run_config(run: Path | None) -> Config:
    """Defaults + the run's saved data.root, lm and decode sections + its tuned decode.yaml
    (only those sections: a run saved by an older version may have other keys), with their
    paths absolute (see resolve_saved_paths)."""
    cfg = Config()
    saved = RunFolder(run).config if run else None
    if saved and saved.is_file():
        values = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
        sections = {k: values[k] for k in ("decode", "lm") if isinstance(values.get(k), dict)}
        if isinstance(values.get("data"), dict) and "root" in values["data"]:
            sections["data"] = {"root": values["data"]["root"]}
        apply(cfg, sections, str(saved))
        train = values["train"] if isinstance(values.get("train"), dict) else {}
        resolve_saved_paths(cfg, run, str(train.get("exp_dir") or ""))
    if run:
        load_tuned(cfg, run)
    return cfg


def training_dir(run: Path, exp_dir: str | None) -> Path | None:
    """The directory a run was trained from: the run folder less its recorded (relative)
    train.exp_dir; None when the two do not match (the run was moved or renamed)."""
    if not exp_dir or Path(exp_dir).is_absolute():
        return None
    recorded = Path(os.path.normpath(exp_dir)).parts
    here = Path(os.path.abspath(run)).parts
    if len(here) > len(recorded) and here[-len(recorded):] == recorded:
        return Path(*here[:-len(recorded)])
    return None


def resolve_saved_paths(cfg: Config, run: Path, exp_dir: str | None) -> None:
    """Make the relative RUN_PATHS of a run's config absolute, in place. Runs saved by older
    versions hold paths relative to the directory they were trained from (training_dir); when
    that is unknown, the current directory is the guess, with a warning."""
    relative = []  # (section, key) of the relative paths
    for name, keys in RUN_PATHS.items():
        section = getattr(cfg, name)
        relative += [(section, key) for key in keys
                     if getattr(section, key) and not Path(getattr(section, key)).is_absolute()]
    if not relative:
        return
    base = training_dir(run, exp_dir)
    if base is None:
        base = Path.cwd()
        names = ", ".join(f"{sec.SECTION}.{key}={getattr(sec, key)}" for sec, key in relative)
        log.warning("%s: relative paths (%s) resolved against the current directory %s, as the run "
                    "is not at its recorded train.exp_dir=%s; if they are wrong, make them absolute "
                    "in that file", RunFolder(run).config, names, base, exp_dir)
    for section, key in relative:
        setattr(section, key, os.path.normpath(base / getattr(section, key)))
