"""Data-parallel training through torchrun on CPU (gloo): two processes == one with the same
global batch (gradient accumulation over the same two batches)."""

import os
import subprocess
import sys

import pytest
import torch
import yaml

from asr.checkpoint import load_checkpoint
from asr.config import save_config
from asr.train import Trainer
from conftest import small_config


def test_two_gloo_processes_match_one_process(tone_store, tmp_path):
    common = dict(epochs=2, max_steps=4, batch_frames=600)
    ddp_cfg = small_config(tone_store, tmp_path / "ddp", **common, threads=1, checkpoint_every=0)
    ddp_cfg.model.dropout = 0.0
    save_config(ddp_cfg, tmp_path / "ddp.yaml")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "asr.cli", "train", "--config", str(tmp_path / "ddp.yaml")],
        capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "world size 2" in proc.stderr

    single_cfg = small_config(tone_store, tmp_path / "single", **common, accum_steps=2, checkpoint_every=0)
    single_cfg.model.dropout = 0.0
    single = Trainer(single_cfg)
    single.train()
    assert single.step == 4

    ddp = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt")
    assert ddp["step"] == 4
    params = dict(single.model.named_parameters())
    for name, value in params.items():
        assert torch.allclose(ddp["model"][name], value.detach(), atol=2e-5), name
