"""Crash safety and resource limits: kill -9 at random moments, disk full, huge utterances."""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from asr import checkpoint as ckpt_mod
from asr.checkpoint import load_checkpoint, save_checkpoint
from asr.config import save_config
from asr.data.store import FeatureStore
from asr.data.dataset import AsrDataset
from asr.text.vocab import CharVocab
from asr.utils import find_tcmalloc
from conftest import small_config


def losses_by_step(run_dir):
    """The loss of each update; for steps redone after a resume the last record counts."""
    by_step = {}
    with open(run_dir / "metrics.jsonl") as f:
        for line in f:
            rec = json.loads(line)
            by_step[rec["step"]] = rec["loss"]
    return by_step


def train_cmd(config, resume=False):
    return [sys.executable, "-m", "asr.cli", "train", "--config", str(config)] + (["--resume"] if resume else [])


def test_kill9_then_resume_matches_uninterrupted_run(tone_store, tmp_path):
    steps = 24
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    configs = {}
    for name in ("straight", "killed"):
        cfg = small_config(tone_store, tmp_path / name, epochs=40, max_steps=steps, checkpoint_every=1,
                           threads=1, batch_frames=600)
        configs[name] = tmp_path / f"{name}.yaml"
        save_config(cfg, configs[name])
    subprocess.run(train_cmd(configs["straight"]), check=True, capture_output=True, env=env, timeout=300)
    reference = losses_by_step(tmp_path / "straight")
    assert sorted(reference) == list(range(1, steps + 1))
    allocator = "tcmalloc" if find_tcmalloc() else "glibc, mmap threshold 1 MB"
    assert f"allocator {allocator}\n" in (tmp_path / "straight" / "train.log").read_text()

    rng = random.Random(7)
    last = tmp_path / "killed" / "checkpoints" / "last.pt"
    kills = 0
    for attempt in range(3):
        proc = subprocess.Popen(train_cmd(configs["killed"], resume=attempt > 0), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while not last.exists() and time.time() < deadline:  # wait for a first checkpoint
            time.sleep(0.05)
        step_before = load_checkpoint(last)["step"] if attempt else 0
        time.sleep(rng.uniform(0.2, 1.5))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        state = load_checkpoint(last)  # the latest checkpoint always loads
        assert state["step"] >= step_before
    assert kills >= 1
    subprocess.run(train_cmd(configs["killed"], resume=True), check=True, capture_output=True,
                   env=env, timeout=300)
    resumed = losses_by_step(tmp_path / "killed")
    assert sorted(resumed) == sorted(reference)
    for step in reference:
        assert resumed[step] == pytest.approx(reference[step], rel=1e-5, abs=1e-5), step

def test_disk_full_during_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1, "w": torch.ones(3)}, path)
    real_save = torch.save

    def full_disk(obj, f, *a, **k):
        f.write(b"partial bytes")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt_mod.torch, "save", full_disk)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint({"step": 2, "w": torch.zeros(3)}, path)
    monkeypatch.setattr(ckpt_mod.torch, "save", real_save)
    state = load_checkpoint(path)
    assert state["step"] == 1 and torch.equal(state["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # temp file removed


def test_overlong_utterances_are_skipped_with_a_count(tone_store):
    store = FeatureStore(tone_store / "features" / "train")
    store.entries[0]["duration"] = 3600.0  # an hour-long utterance
    store.entries[0]["frames"] = 360000
    ds = AsrDataset(store, CharVocab(), subsample=4, max_duration=30.0)
    assert ds.dropped == {"longer than max_duration": 1}
    assert len(ds) == len(store) - 1
