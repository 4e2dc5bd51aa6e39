"""A training step against the machine's limit: the fp32 GEMM peak measured here, the FLOPs a
step needs (counted from the model's shapes) and where the step's time goes.

    gemm_peak_gflops()             fp32 matrix products at torch's thread count, best of a few
    train_gflop_per_audio_s(model) forward + backward FLOPs per second of audio (backward = 2x
                                   forward, the usual count for matmul-bound networks)
    StepPhases(trainer, sync)      times each phase of trainer.backward() + update() by hooks
                                   (sync: CUDA synchronised at every phase boundary)

Used by `make bench-train` (asr.bench.train): achieved GFLOP/s = audio-s/s x GFLOP per
audio-second, and its share of the GEMM peak, is one number comparable across machines.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

PHASES = ("data + other", "front-end", "RNN", "output", "CTC", "backward", "optimiser")


def gemm_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    """fp32 GFLOP/s of a size x size x size matrix product at torch's thread count (the best of
    `repeats` timed products after one warm-up)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * size ** 3 / best / 1e9


def _conv2d_flops_per_frame(conv: nn.Conv2d, time_stride: int, freq_bins: int) -> float:
    """FLOPs of one Conv2d per input frame of its own input (time_stride: input frames per
    output frame; freq_bins: its output's frequency bins)."""
    kh, kw = conv.kernel_size
    per_position = 2 * conv.in_channels * conv.out_channels * kh * kw / conv.groups
    return per_position * freq_bins / time_stride


def _rnn_flops_per_step(rnn: nn.RNNBase) -> float:
    """FLOPs of one RNN layer per time step, both directions: the gate matmuls W_ih x + W_hh h
    (4 gates for an LSTM, 3 for a GRU; an LSTM projection adds its own)."""
    gates = {"LSTM": 4, "GRU": 3}[rnn.mode]
    h, out = rnn.hidden_size, rnn.proj_size or rnn.hidden_size
    flops = 2 * gates * h * (rnn.input_size + out) + (2 * h * out if rnn.proj_size else 0)
    return flops * (2 if rnn.bidirectional else 1)


def forward_flops_per_frame(model) -> float:
    """Forward FLOPs of a CTCModel per input feature frame, from its layers' shapes: the two
    convolutions, every RNN layer, the lookahead and the output layer (normalisation,
    activations and the CTC loss are elementwise and left out)."""
    front = model.frontend
    freq = front.out_dim // front.convs[-1].out_channels  # frequency bins after both convs
    conv1, conv2 = front.convs
    flops = _conv2d_flops_per_frame(conv1, front.strides[0], freq * 2)
    flops += _conv2d_flops_per_frame(conv2, front.strides[0] * front.strides[1], freq)
    per_output_frame = sum(_rnn_flops_per_step(r) for r in model.rnn.rnns)
    if model.lookahead is not None:
        c = model.lookahead.conv
        per_output_frame += 2 * c.out_channels * c.kernel_size[0]
    per_output_frame += 2 * model.output.in_features * model.output.out_features
    return flops + per_output_frame / model.cfg.subsample


def train_gflop_per_audio_s(model, hop_ms: float = 10.0) -> float:
    """Forward + backward GFLOP per second of audio (backward counted as twice the forward)."""
    return 3 * forward_flops_per_frame(model) * (1000 / hop_ms) / 1e9


class StepPhases:
    """Times the phases of a training step by module hooks on the trainer's model and CTC loss:
    start() before trainer.backward(), mark("backward") after it, mark("optimiser") after
    trainer.update(); medians() gives each phase's median seconds over the steps timed.
    The phases cover the step: their sum is the time from start() to mark("optimiser").

    sync: on a CUDA trainer, torch.cuda.synchronize() before every timestamp, so each phase
    holds its own kernels (asr.bench.gpu; a little slower than unmeasured); on the CPU, which
    runs synchronously, it changes nothing."""

    def __init__(self, trainer, sync: bool = False):
        model = trainer.model
        self.device = torch.device(trainer.device)
        self.sync = sync and self.device.type == "cuda"
        self.times: dict[str, list[float]] = {p: [] for p in PHASES}
        self.t: dict[str, float] = {}
        self.handles = []
        for name, module in (("frontend", model.frontend), ("rnn", model.rnn), ("model", model),
                             ("ctc", trainer.ctc)):
            self.handles.append(module.register_forward_pre_hook(self._stamp(name + "_in")))
            self.handles.append(module.register_forward_hook(self._stamp(name + "_out")))

    def now(self) -> float:
        """time.perf_counter(), after the device's queued work with sync."""
        if self.sync:
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _stamp(self, key: str):
        def hook(*args):
            self.t[key] = self.now()
        return hook

    def start(self) -> None:
        self.t = {"start": self.now()}

    def mark(self, phase: str) -> None:
        """Record the end of "backward" (trainer.backward returned) or "optimiser"."""
        self.t[phase] = self.now()
        if phase != "optimiser":
            return
        t = self.t
        spans = {"data + other": t["frontend_in"] - t["start"] + t["ctc_in"] - t["model_out"],
                 "front-end": t["frontend_out"] - t["frontend_in"],
                 "RNN": t["rnn_out"] - t["rnn_in"], "output": t["model_out"] - t["rnn_out"],
                 "CTC": t["ctc_out"] - t["ctc_in"], "backward": t["backward"] - t["ctc_out"],
                 "optimiser": t["optimiser"] - t["backward"]}
        for name, seconds in spans.items():
            self.times[name].append(seconds)

    def update(self, trainer, batch) -> None:
        """One timed training update of batch: trainer.backward, then trainer.update (what
        start() and the two marks time when a caller has more to do in between)."""
        self.start()
        trainer.backward(batch, sync=True)
        self.mark("backward")
        trainer.update()
        self.mark("optimiser")

    def medians(self) -> dict[str, float]:
        return {p: statistics.median(v) for p, v in self.times.items() if v}

    def close(self) -> None:
        for h in self.handles:
            h.remove()
