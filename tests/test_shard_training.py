"""Training from shards streamed in order (data.train_shards): it trains, resumes mid-epoch
exactly, and under DDP with uneven shards every rank ends each epoch together."""

import json
import os
import subprocess
import sys

import pytest
import torch

from asr.checkpoint import load_checkpoint
from asr.config import save_config
from asr.data.shard_writer import write_shards
from asr.data.store import FeatureStore
from asr.data.training import open_training_data
from asr.text.units import build_vocab
from asr.train import Trainer
from conftest import small_config


def feature_shards(tone_store, out, max_count=8):
    store = FeatureStore(tone_store / "features" / "train")
    write_shards(tone_store / "manifests" / "train.jsonl", out, features_store=store.path,
                 max_count=max_count)
    return out


def shard_config(tone_store, exp, shards, **train):
    cfg = small_config(tone_store, exp, checkpoint_every=0, batch_frames=600, **train)
    cfg.data.train_shards = str(shards)
    cfg.model.dropout = 0.1  # the RNG state must resume too
    cfg.augment.specaugment = True  # and the per-utterance draws
    return cfg


def losses(run_dir):
    by_step = {}
    for line in open(run_dir / "metrics.jsonl"):
        rec = json.loads(line)
        by_step[rec["step"]] = (rec["epoch"], rec["loss"])
    return by_step


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_training_resumes_mid_epoch_exactly(tone_store, tmp_path, workers):
    shards = feature_shards(tone_store, tmp_path / "shards")
    straight = Trainer(shard_config(tone_store, tmp_path / "straight", shards, epochs=2,
                                    num_workers=workers))
    assert straight.data.streamed and straight.data.utterances == 48
    straight.train()
    reference = losses(tmp_path / "straight")
    epochs = [e for e, _ in reference.values()]
    assert epochs.count(1) >= 3 and epochs.count(2) >= 3
    stop = epochs.index(2) + 2  # one update into the second epoch

    cfg = shard_config(tone_store, tmp_path / "resumed", shards, epochs=2, num_workers=workers)
    first = Trainer(cfg)
    first.done = lambda start: first.step >= stop  # interrupted mid-epoch (then saved)
    first.train()
    saved = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert saved["step"] == stop and saved["batch_in_epoch"] > 0
    assert saved["data_positions"][0]["batches"]  # the stream's own resume point
    resumed = Trainer(cfg, resume=True)
    resumed.train()
    assert resumed.step == straight.step
    got = losses(tmp_path / "resumed")
    assert {k: e for k, (e, _) in got.items()} == {k: e for k, (e, _) in reference.items()}
    assert {k: v for k, (_, v) in got.items()} == pytest.approx({k: v for k, (_, v) in reference.items()})
    for name, value in straight.model.state_dict().items():
        assert torch.allclose(resumed.model.state_dict()[name], value, atol=1e-6), name


def test_two_ranks_with_uneven_shards_end_every_epoch_together(tone_store, tmp_path):
    """3 shards of 16 utterances: rank 0 reads 2, rank 1 reads 1, so rank 1 runs out of batches
    first; without the agreement rank 0 would train on alone, its gradient all-reduces paired
    with whatever collective rank 1 reaches next (or waiting for it forever)."""
    shards = tmp_path / "shards"
    write_shards(tone_store / "manifests" / "train.jsonl", shards,
                 features_store=tone_store / "features" / "train", max_count=16)
    cfg = shard_config(tone_store, tmp_path / "ddp", shards, epochs=2, threads=1)
    save_config(cfg, tmp_path / "ddp.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "asr.cli", "train", "--config", str(tmp_path / "ddp.yaml")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "world size 2" in proc.stderr and "streamed from shards" in proc.stderr
    ckpt = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 2
    assert len(ckpt["data_positions"]) == 2  # each rank's stream state, for resuming
    # every epoch has as many updates as the rank with the fewest batches has batches
    vocab = build_vocab(cfg.data)
    per_rank = []
    for rank in range(2):
        data, _ = open_training_data(cfg, vocab, rank, 2)
        counts = []
        for epoch in range(2):
            data.set_epoch(epoch)
            counts.append(sum(1 for _ in data))
        per_rank.append(counts)
    assert per_rank[0] != per_rank[1], "the test needs ranks with different batch counts"
    epochs = [e for e, _ in losses(tmp_path / "ddp").values()]
    assert [epochs.count(1), epochs.count(2)] == [min(c) for c in zip(*per_rank)]
