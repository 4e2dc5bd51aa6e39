"""The LM weight / word score search of `asr tune-lm` and the ``<exp_dir>/decode.yaml`` it
writes: the tuned file is written and read only here (asr.source layers it between a run's
recipe and the command line's overrides).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
from pathlib import Path
from typing import Callable

import torch
import yaml

from asr.config import Config, DecodeConfig, apply
from asr.utils import atomic_write_text
from asr.run_folder import RunFolder

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- the tuned file

def load_tuned(cfg: Config, exp_dir: str | Path | None = None) -> Config:
    """Apply <exp_dir>/decode.yaml (the tuned decode section) onto cfg when it exists."""
    path = RunFolder(exp_dir or cfg.train.exp_dir).tuned
    if path.is_file():
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        apply(cfg, {"decode": values.get("decode", {})}, str(path))
        log.info("decode settings tuned by asr tune-lm: %s", path)
    return cfg


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
