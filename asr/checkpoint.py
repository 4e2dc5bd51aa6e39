"""Checkpoints: plain dicts of tensors + config + vocabulary (and, for subword units, the
sentencepiece model as a uint8 tensor), written atomically, loaded safely."""

from __future__ import annotations

import dataclasses
import logging
import pickle
from pathlib import Path

import torch

from asr.config import FeatureConfig, ModelConfig
from asr.model import CTCModel
from asr.utils import atomic_open
from asr.text.units import vocab_from_checkpoint
from asr.run_folder import RunFolder

log = logging.getLogger(__name__)


class CheckpointError(Exception):
    """A checkpoint that cannot be loaded; the message names the file and why."""


def save_checkpoint(state: dict, path: str | Path) -> None:
    """Write to a temp file in the same folder, fsync, then rename: a crash or a full disk
    mid-write leaves the previous file at `path` intact."""
    with atomic_open(path, "wb") as f:
        torch.save(state, f)


def load_checkpoint(path: str | Path) -> dict:
    """Load with weights_only=True: a file carrying arbitrary pickled objects is refused."""
    path = Path(path)
    if path.is_dir():
        path = find_checkpoint(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{path}: refused: the file holds objects other than tensors and "
                              f"plain data, which could run code when loaded ({e})") from None
    except Exception as e:
        raise CheckpointError(f"{path}: cannot load checkpoint ({e})") from None


def find_checkpoint(run_dir: str | Path, which: str = "best", fallback: bool = True) -> Path:
    """A run folder's checkpoints/<which>.pt.

    A run that has not validated yet has no best.pt: with fallback, "best" then gives last.pt
    with a logged warning; without (best asked for by name), CheckpointError. Any other
    missing name is a CheckpointError listing the checkpoints there are."""
    run = RunFolder(run_dir)
    path = run.checkpoint(which)
    if path.is_file():
        return path
    last = run.checkpoint("last")
    if which == "best" and fallback and last.is_file():
        log.warning("%s: no checkpoints/best.pt (the run has not validated yet?): using last.pt",
                    run_dir)
        return last
    there = sorted(p.stem for p in run.checkpoints.glob("*.pt"))
    raise CheckpointError(f"{run_dir}: no checkpoints/{which}.pt (there are: "
                          f"{', '.join(there) or 'none'}); give one of them")


def _known(cls, values: dict):
    """A config dataclass from a checkpoint's dict, ignoring keys this version doesn't have
    (checkpoints from other versions keep loading; a missing key takes its default)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


def model_from_checkpoint(ckpt: dict) -> tuple[CTCModel, object, FeatureConfig]:
    """Rebuild the model (eval mode), its vocabulary and feature settings from a checkpoint dict."""
    model_cfg = _known(ModelConfig, ckpt["config"]["model"])
    feat_cfg = _known(FeatureConfig, ckpt["config"]["features"])
    vocab = vocab_from_checkpoint(ckpt)  # with its sentencepiece model, if any
    model = CTCModel(model_cfg, ckpt["n_feats"], len(vocab))
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, vocab, feat_cfg


def epoch_checkpoints(ckpt_dir: str | Path) -> list[Path]:
    """checkpoints/epoch-<n>.pt files, oldest first."""
    paths = Path(ckpt_dir).glob("epoch-*.pt")
    return sorted(paths, key=lambda p: int(p.stem.split("-")[1]))


def average_checkpoints(paths: list[Path]) -> dict:
    """The last checkpoint's dict with its model weights replaced by the mean over `paths`
    (floating-point tensors averaged; integer buffers such as BatchNorm counters from the last).
    Optimiser state is dropped: an averaged model is for decoding, not for resuming."""
    if not paths:
        raise CheckpointError("no checkpoints to average (train with train.keep_epochs=N)")
    states = [load_checkpoint(p) for p in paths]
    averaged = dict(states[-1])
    model = {}
    for key, last in states[-1]["model"].items():
        if last.is_floating_point():
            model[key] = sum(s["model"][key] for s in states) / len(states)
        else:
            model[key] = last
    averaged["model"] = model
    averaged["averaged_from"] = [p.name for p in paths]
    for key in ("optimizer", "scheduler", "scaler", "rng"):
        averaged.pop(key, None)
    return averaged
