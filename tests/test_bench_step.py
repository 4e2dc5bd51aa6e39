"""The training step against the machine's limit (asr.bench.step): FLOPs from the model's
shapes, and the phases of a real step timed by hooks."""

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
        phases.start()
        trainer.backward(batch, sync=True)
        phases.mark("backward")
        trainer.update()
        phases.mark("optimiser")
    phases.close()
    medians = phases.medians()
    assert set(medians) == set(PHASES) and all(s > 0 for s in medians.values())
    assert gemm_peak_gflops(size=128, repeats=2) > 0
