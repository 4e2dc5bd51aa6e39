"""Training on a tiny generated corpus: loss goes down, checkpoints load safely, resume is exact."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asr.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from asr.data.store import FeatureStore
from asr.model import cpu_autocast_rnn_works
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


def test_on_the_fly_features_train_and_skip_broken_audio(tone_corpus, tmp_path, caplog):
    """No feature store: features come from the audio in the loader; a broken file is skipped."""
    (tone_corpus / "audio" / "train" / "train003.wav").write_bytes(b"RIFF broken")
    cfg = small_config(tone_corpus, tmp_path / "otf", epochs=2, max_steps=4)
    cfg.features.on_the_fly = True
    trainer = Trainer(cfg)
    assert type(trainer.data.dataset.store).__name__ == "OnTheFlyStore"
    result = trainer.train()
    assert result["step"] == 4
    assert caplog.text.count("skipped: ") == 1 and "train003.wav" in caplog.text  # reported once
    assert (tmp_path / "otf" / "checkpoints" / "last.pt").exists()


@pytest.mark.parametrize("amp", ["bf16"])
def test_autocast_training_keeps_ctc_in_fp32(tone_store, tmp_path, amp):
    trainer = Trainer(small_config(tone_store, tmp_path / amp, epochs=2, max_steps=3, amp=amp))
    result = trainer.train()
    assert result["step"] == 3 and result["skipped_steps"] == 0
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    # on a CPU without a bf16 LSTM kernel (AVX2 only) the LSTMs run in fp32, on others in bf16
    assert trainer.model.rnn.fp32 == (not cpu_autocast_rnn_works("lstm"))


BF16_RUN = """
import sys
sys.path.insert(0, sys.argv[3])
from conftest import small_config
from asr.train import Trainer
trainer = Trainer(small_config(sys.argv[1], sys.argv[2], epochs=1, max_steps=2, amp="bf16"))
assert trainer.model.rnn.fp32
print(trainer.train()["step"])
"""


def test_bf16_training_on_a_cpu_without_a_bf16_lstm_kernel(tone_store, tmp_path):
    """oneDNN capped at AVX2 (as on an AVX2-only EPYC) has no bf16 LSTM primitive: training
    with train.amp=bf16 runs the LSTMs in fp32, says so, and does not crash."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    run = subprocess.run([sys.executable, "-c", BF16_RUN, str(tone_store), str(tmp_path / "exp"),
                          str(Path(__file__).parent)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split()[-1] == "2"
    assert "no bf16 LSTM kernel" in run.stderr


def test_non_finite_loss_skips_the_update_and_goes_on(tone_store, tmp_path, monkeypatch):
    trainer = Trainer(small_config(tone_store, tmp_path / "nan", epochs=2, max_steps=4))
    real_forward = trainer.model.forward
    calls = {"n": 0}

    def poisoned(feats, lengths):
        calls["n"] += 1
        if calls["n"] == 2:  # the second batch produces NaN features
            feats = feats * float("nan")
        return real_forward(feats, lengths)

    monkeypatch.setattr(trainer.model, "forward", poisoned)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    result = trainer.train()
    assert result["skipped_steps"] == 1 and result["step"] == 4
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine: "
                    "the cuDNN RNN / bf16 / pinned-memory path runs only where a GPU is present")
def test_cuda_training_path(tone_store, tmp_path):
    trainer = Trainer(small_config(tone_store, tmp_path / "cuda", epochs=2, max_steps=3,
                                   device="cuda", amp="bf16", num_workers=1))
    assert trainer.device.type == "cuda"
    assert trainer.train()["step"] == 3


def test_lr_schedule_warmup_cosine_and_time_budget():
    from asr.train import lr_factor
    assert lr_factor(0, 10, 100, 0.05) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100, 0.05) == pytest.approx(1.0)
    assert lr_factor(55, 10, 100, 0.05) == pytest.approx(0.05 + 0.95 * 0.5)
    assert lr_factor(100, 10, 100, 0.05) == pytest.approx(0.05)
    # a run at 20% of its steps but 100% of its wall-time budget has fully decayed
    assert lr_factor(28, 10, 100, 0.05, time_fraction=1.0) == pytest.approx(0.05)
    assert lr_factor(28, 10, 100, 0.05, time_fraction=0.1) == lr_factor(28, 10, 100, 0.05)


def test_keep_epochs_and_checkpoint_averaging(tone_store, tmp_path):
    from asr.checkpoint import average_checkpoints, epoch_checkpoints
    from asr.cli import main
    run = tmp_path / "avg"
    Trainer(small_config(tone_store, run, epochs=4, keep_epochs=3)).train()
    kept = epoch_checkpoints(run / "checkpoints")
    assert [p.name for p in kept] == ["epoch-2.pt", "epoch-3.pt", "epoch-4.pt"]
    avg = average_checkpoints(kept[-2:])
    a, b = (load_checkpoint(p)["model"] for p in kept[-2:])
    key = "output.weight"
    assert torch.allclose(avg["model"][key], (a[key] + b[key]) / 2)
    assert main(["average", str(run), "--last", "2"]) == 0
    model, _, _ = model_from_checkpoint(load_checkpoint(run / "checkpoints" / "avg-last2.pt"))
    assert "optimizer" not in load_checkpoint(run / "checkpoints" / "avg-last2.pt")


def test_features_on_device_match_the_store(tone_corpus, tone_store, tmp_path):
    """features.on_device: the loader yields waveforms and the batch is featurised on the
    training device; the result is what the feature store holds for the same audio."""
    cfg = small_config(tone_corpus, tmp_path / "dev", epochs=2, max_steps=3)
    cfg.features.on_the_fly = cfg.features.on_device = True
    trainer = Trainer(cfg)
    feats, lens, _, _, ids = next(iter(trainer.data))
    assert feats.dim() == 2  # raw audio
    x, n = trainer.to_features(feats, lens)
    store = FeatureStore(tone_store / "features" / "train")
    by_id = {e["id"]: i for i, e in enumerate(store.entries)}
    ref = torch.from_numpy(store.features(by_id[ids[0]]))
    assert int(n[0]) == len(ref)
    # frames away from the utterance's end match (the end differs: zeros vs reflection padding)
    assert torch.allclose(x[0, 1:len(ref) - 2], ref[1:-2], atol=0.05)
    assert trainer.train()["step"] == 3


def test_resuming_a_finished_run_trains_no_further(tone_store, tmp_path):
    cfg = small_config(tone_store, tmp_path / "done", epochs=5, max_steps=2)
    assert Trainer(cfg).train()["step"] == 2
    again = Trainer(small_config(tone_store, tmp_path / "done", epochs=5, max_steps=2), resume=True)
    assert again.train()["step"] == 2
    steps = [json.loads(line)["step"] for line in (tmp_path / "done" / "metrics.jsonl").open()]
    assert steps == [1, 2]


def test_finish_by_caps_the_wall_budget():
    """train.finish_by (make demo's deadline) caps train.max_minutes at the minutes left, but
    training always gets MIN_TRAIN_MINUTES; without it max_minutes stands."""
    from asr.train import MIN_TRAIN_MINUTES, wall_budget_minutes
    now = 1_000_000.0
    assert wall_budget_minutes(17, 0, now) == 17
    assert wall_budget_minutes(17, now + 600, now) == 10
    assert wall_budget_minutes(17, now + 3600, now) == 17
    assert wall_budget_minutes(0, now + 600, now) == 10
    assert wall_budget_minutes(17, now - 60, now) == MIN_TRAIN_MINUTES


def test_resume_continues_the_time_budgets_lr_decay(tone_store, tmp_path, monkeypatch):
    """A run with a wall-time budget (train.max_minutes) resumed mid-budget goes on with the
    learning rate where it was (the budget's used share is in the checkpoint), instead of
    jumping back up towards the peak with a fresh budget."""
    class Clock:  # the trainer's clock: 1 s a reading, so the test does not depend on speed
        now = 1e9

        def time(self):
            Clock.now += 1.0
            return Clock.now
    monkeypatch.setattr("asr.train.time", Clock())
    cfg = small_config(tone_store, tmp_path / "run", epochs=500, max_minutes=5)

    def run_until(trainer, step):  # as if stopped (Ctrl-C, a lost machine) after that update
        trainer.done = lambda start: trainer.step >= step
        trainer.train()
    run_until(Trainer(cfg), 30)
    saved = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert saved["step"] == 30 and saved["train_seconds"] > 60
    Clock.now += 3600  # resumed an hour later: that hour is not training time
    resumed = Trainer(cfg, resume=True)
    run_until(resumed, 33)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    lr = {x["step"]: x["lr"] for x in lines}
    assert lr[30] < 0.9 * 3e-3  # decayed by time: 30 of 1,500 steps would leave it near the peak
    assert 0.8 * lr[30] < lr[33] <= lr[31] <= lr[30]  # on down from where it was: no jump
    assert resumed.train_seconds() < saved["train_seconds"] + 60
