"""Training on a tiny generated corpus: loss goes down, checkpoints load safely, resume is exact."""

import json

import pytest
import torch

from asr.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from asr.train import Trainer

from conftest import small_config


def test_ctc_training_reduces_loss(tone_store, tmp_path):
    trainer = Trainer(small_config(tone_store, tmp_path / "exp", epochs=12))
    first = trainer.validate()
    result = trainer.train()
    last = trainer.validate()
    assert result["epoch"] == 12 and result["skipped_steps"] == 0
    assert last["loss"] < 0.5 * first["loss"], (first, last)
    assert last["cer"] < first["cer"]
    ckpt = load_checkpoint(tmp_path / "exp" / "checkpoints" / "best.pt")
    model, vocab, feat_cfg = model_from_checkpoint(ckpt)
    assert vocab.tokens == trainer.vocab.tokens and feat_cfg.n_mels == 80
    assert (tmp_path / "exp" / "config.yaml").exists() and (tmp_path / "exp" / "train.log").exists()
    assert list((tmp_path / "exp" / "tensorboard").iterdir())


def test_resume_continues_exactly(tone_store, tmp_path):
    """3 epochs straight == 1 epoch + stop + resume for 2 more (same seed, CPU)."""
    full = Trainer(small_config(tone_store, tmp_path / "full", epochs=3))
    full.train()
    part = Trainer(small_config(tone_store, tmp_path / "part", epochs=3, max_steps=7))
    part.train()
    assert part.step == 7
    resumed = Trainer(small_config(tone_store, tmp_path / "part", epochs=3), resume=True)
    assert resumed.step == 7
    resumed.train()
    a, b = full.model.state_dict(), resumed.model.state_dict()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k


def test_pickle_payload_checkpoint_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))
    path = tmp_path / "evil.pt"
    torch.save({"model": Payload()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
