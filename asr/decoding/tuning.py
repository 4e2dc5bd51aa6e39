"""Decode settings per run: the LM weight / word score search of `asr tune-lm`, the
``<exp_dir>/decode.yaml`` it writes, and the layering that applies it.

Every decode entry point (decode, tune-lm, transcribe of a run folder, bench-decode) resolves
its settings the same way: recipe defaults, then the run's tuned ``decode.yaml``, then the
command-line overrides (:func:`run_config`). The tuned file is written and read only here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
from pathlib import Path
from typing import Callable

import torch
import yaml

from asr.config import Config, DecodeConfig, apply, load_config, parse_overrides
from asr.utils import atomic_write_text
from asr.run_folder import RunFolder

log = logging.getLogger(__name__)



# ---------------------------------------------------------------- layering

def load_tuned(cfg: Config, exp_dir: str | Path | None = None) -> Config:
    """Apply <exp_dir>/decode.yaml (the tuned decode section) onto cfg when it exists."""
    path = RunFolder(exp_dir or cfg.train.exp_dir).tuned
    if path.is_file():
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        apply(cfg, {"decode": values.get("decode", {})}, str(path))
        log.info("decode settings tuned by asr tune-lm: %s", path)
    return cfg


def run_config(config: str | Path | None, overrides: list[str] | None) -> Config:
    """Recipe defaults, then the run's tuned decode.yaml, then the command-line overrides
    (which also say which run: train.exp_dir)."""
    cfg = load_config(config, overrides)
    load_tuned(cfg)
    if overrides:
        apply(cfg, parse_overrides(overrides), "command line")
    return cfg


def run_folder(model: str | Path) -> Path | None:
    """The run folder of a model argument: the folder itself, or <run>/checkpoints/x.pt's run."""
    model = Path(model)
    if model.is_dir():
        return model
    return model.parent.parent if model.parent == RunFolder(model.parent.parent).checkpoints else None


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


def decode_settings(cfg: Config) -> DecodeConfig:
    """cfg.decode with its empty LM/lexicon paths filled from the lm section."""
    from asr.decoding.decoders import resolve_lm_paths
    from asr.decoding.lm import lm_paths
    return resolve_lm_paths(cfg.decode, lm_paths(cfg)["dir"])


# ---------------------------------------------------------------- the search

def split_outputs(model, store, device: torch.device) -> list[torch.Tensor]:
    """Network outputs of every utterance of a store, in store order: (T, V) log-probs each."""
    from asr.decoding.decoders import forward_batch, store_batches
    model.to(device).eval()
    outs: dict[int, torch.Tensor] = {}
    for batch in store_batches(store, 20000):
        lp, lens = forward_batch(model, [torch.from_numpy(store.features(i)) for i in batch], device)
        for k, i in enumerate(batch):
            outs[i] = lp[k, :lens[k]].clone()
    return [outs[i] for i in range(len(store))]


def search_space(method: str, trials: int, weights: list[float], scores: list[float], seed: int):
    """(lm_weight, word_score) pairs: the full grid, or `trials` random draws from its ranges."""
    if method == "grid":
        return [(w, s) for w in weights for s in scores]
    rng = random.Random(seed)
    return [(round(rng.uniform(min(weights), max(weights)), 3), round(rng.uniform(min(scores), max(scores)), 3))
            for _ in range(trials)]


def evaluate(outputs: list[torch.Tensor], refs: list[str], vocab, settings: DecodeConfig) -> float:
    """WER (%) of the settings' decoder on precomputed network outputs."""
    from asr.decoding.decoders import get_decoder
    from asr.scoring.score import wer
    decode = get_decoder(settings.decoder).decode  # Decoder.decode, built in or registered
    hyps = [decode(lp[None], torch.tensor([len(lp)]), vocab, settings)[0]["text"] for lp in outputs]
    return wer(refs, hyps)


_TRIAL_INPUTS: tuple | None = None  # (outputs, refs, vocab, base) for the forked trial workers


def _trial(point: tuple[float, float]) -> tuple[dict, float]:
    """One (lm_weight, word_score) trial on _TRIAL_INPUTS: ({lm_weight, word_score, wer}, seconds)."""
    import time
    outputs, refs, vocab, base = _TRIAL_INPUTS
    w, s = point
    t0 = time.perf_counter()
    wer = evaluate(outputs, refs, vocab, dataclasses.replace(base, lm_weight=w, word_score=s))
    return {"lm_weight": w, "word_score": s, "wer": round(wer, 3)}, time.perf_counter() - t0


def tune(outputs, refs, vocab, base: DecodeConfig, space, on_trial: Callable | None = None,
         nj: int = 1) -> list[dict]:
    """Decode with every (lm_weight, word_score) of space; the trials [{lm_weight, word_score,
    wer}] in order. on_trial(trial, seconds) is called after each (progress). nj: trials run in
    that many forked processes (the beam search is one thread each; the outputs are shared by
    the fork, not copied)."""
    from asr.utils import WorkerPool
    global _TRIAL_INPUTS
    _TRIAL_INPUTS = (outputs, refs, vocab, base)  # before the fork, so the workers see it
    pool = WorkerPool(min(nj, len(space)))
    try:
        trials = []
        for trial, seconds in pool.imap(_trial, space):
            trials.append(trial)
            if on_trial:
                on_trial(trial, seconds)
        return trials
    finally:
        pool.close()
        _TRIAL_INPUTS = None


def write_tuned(exp_dir: str | Path, split: str, method: str, trials: list[dict],
                decoder: str = "beam_lm") -> dict:
    """The best trial, written as <exp_dir>/decode.yaml (+ every trial in tune_lm.json)."""
    best = min(trials, key=lambda t: t["wer"])
    exp = Path(exp_dir)
    header = (f"# written by `asr tune-lm` ({method}, {len(trials)} trials on {split}): "
              f"{decoder} WER {best['wer']}%\n")
    decode = {"lm_weight": best["lm_weight"], "word_score": best["word_score"]}
    atomic_write_text(RunFolder(exp).tuned, header + yaml.safe_dump({"decode": decode}, sort_keys=False))
    atomic_write_text(exp / "tune_lm.json", json.dumps({"split": split, "trials": trials}, indent=1) + "\n")
    return best
