"""The training step against the machine's limit (asr.bench.step): FLOPs from the model's
shapes, and the phases of a real step timed by hooks."""

from types import SimpleNamespace

import torch

from asr.bench.step import PHASES, StepPhases, forward_flops_per_frame, gemm_peak_gflops, train_gflop_per_audio_s
from asr.config import ModelConfig
from asr.model import CTCModel
from asr.train import Trainer
from conftest import small_config


def test_flops_are_counted_from_the_shapes():
    cfg = ModelConfig(subsample=4, conv_channels=8, rnn_type="lstm", rnn_layers=2, rnn_hidden=16)
    model = CTCModel(cfg, 40, 10)
    conv1 = 2 * 1 * 8 * 9 * 20 / 2           # per input frame: output bins 20, time stride 2
    conv2 = 2 * 8 * 8 * 9 * 10 / 4            # output bins 10, time stride 4 overall
    rnn1 = 2 * 2 * 4 * 16 * (80 + 16)         # both directions, 4 gates, input 8 x 10
    rnn2 = 2 * 2 * 4 * 16 * (32 + 16)
    out = 2 * 32 * 10
    assert forward_flops_per_frame(model) == conv1 + conv2 + (rnn1 + rnn2 + out) / 4
    assert train_gflop_per_audio_s(model) == 3 * forward_flops_per_frame(model) * 100 / 1e9
    gru = CTCModel(ModelConfig(subsample=4, conv_channels=8, rnn_type="gru", rnn_layers=2, rnn_hidden=16), 40, 10)
    assert forward_flops_per_frame(gru) < forward_flops_per_frame(model)  # 3 gates, not 4


def test_every_phase_of_a_training_step_is_timed(tone_store, tmp_path):
    trainer = Trainer(small_config(tone_store, tmp_path / "exp"))
    phases = StepPhases(trainer)
    for batch in list(trainer.data)[:2]:
        phases.update(trainer, batch)
    phases.close()
    medians = phases.medians()
    assert set(medians) == set(PHASES) and all(s > 0 for s in medians.values())
    assert gemm_peak_gflops(size=128, repeats=2) > 0


def test_sync_is_a_no_op_on_the_cpu_and_synchronises_every_stamp_on_cuda(monkeypatch):
    """StepPhases(sync=True) as asr.bench.gpu's phases row uses it, on its Trainer without data
    (bench_trainer): on the CPU no synchronize call and the same phases; a trainer whose device
    is CUDA (faked: the hooked modules run on the CPU) synchronises it before every timestamp."""
    from asr.bench.gpu import ModelSize, Utterances
    from asr.bench.gpu_batches import utterance_batch
    from asr.bench.gpu_sections import bench_trainer
    from asr.text.vocab import CharVocab
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    vocab = CharVocab()
    trainer = bench_trainer(ModelSize(1, 16, conv_channels=4), "none", torch.device("cpu"), vocab)
    batch = utterance_batch(2, Utterances(1.0, 2.0, 1.5, 0.3), len(vocab), seed=0)
    cuda = torch.device("cuda", 0)
    for owner, expected in ((trainer, []), (SimpleNamespace(model=trainer.model, ctc=trainer.ctc,
                                                            device=cuda), [cuda] * 11)):
        phases = StepPhases(owner, sync=True)
        phases.update(trainer, batch)
        phases.close()
        assert calls == expected  # start, 4 modules in and out, 2 marks
        assert set(phases.medians()) == set(PHASES) and all(s >= 0 for s in phases.medians().values())
        calls.clear()
