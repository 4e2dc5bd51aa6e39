"""The training measurements of `python -m asr.bench.gpu` (asr/bench/gpu.py runs, prints and
saves them): throughput, phases, waveform, parity and convergence.

Every section trains with the project's own code: CTCModel, and Trainer.build_model,
build_optimizer, backward (autocast, the fp32 CTC loss) and update (clipping, AdamW) of a
Trainer made without a run folder or data on disk (bench_trainer), on the synthetic batches of
asr.bench.gpu_batches. Sizes are duck-typed (asr.bench.gpu's ModelSize).
"""

from __future__ import annotations

import statistics
import time
from types import SimpleNamespace

import torch

from asr.bench.gpu_batches import N_FEATS, SAMPLE_RATE
from asr.bench.gpu_decoder import clean, error_rate
from asr.bench.gpu_machine import UtilSampler, peak_memory_gib, sync
from asr.bench.step import PHASES, StepPhases
from asr.config import Config, FeatureConfig, ModelConfig, TrainConfig
from asr.data.dataset import Batch
from asr.data.features import FeatureExtractor
from asr.decoding.decoders import greedy_decode
from asr.model import count_parameters
from asr.train import Trainer

AMP_NAMES = {"bf16": "bf16", "none": "fp32"}
FORWARD = ("front-end", "RNN", "output")  # the phases of the model's forward


# ---------------------------------------------------------------- a Trainer without data

def bench_trainer(size, amp: str, device: torch.device, vocab, n_feats: int = N_FEATS,
                  updates: int = 1000, featurizer=None, lr: float = 1.5e-3, warmup_steps: int = 100,
                  dropout: float | None = None, world: int = 1, rank: int = 0) -> Trainer:
    """A Trainer whose model, optimiser, backward and update are the project's own, without
    the run folder, logging and data that Trainer.__init__ sets up (there is no data on disk).
    featurizer: a FeatureExtractor on the device (batches of waveforms, features.on_device)."""
    trainer = Trainer.__new__(Trainer)
    model = ModelConfig(rnn_layers=size.layers, rnn_hidden=size.hidden,
                        conv_channels=size.conv_channels,
                        dropout=size.dropout if dropout is None else dropout)
    trainer.cfg = Config(model=model, train=TrainConfig(amp=amp, lr=lr, warmup_steps=warmup_steps,
                                                        epochs=1))
    trainer.rank, trainer.world, trainer.device = rank, world, device
    trainer.vocab, trainer.featurizer, trainer.augment = vocab, featurizer, None
    trainer.data = SimpleNamespace(per_epoch=updates)  # build_optimizer's schedule length
    trainer.init = None  # what join_run's finetune.prepare gives without train.init_from
    trainer.build_model(n_feats, (torch.zeros(n_feats), torch.ones(n_feats)))
    trainer.build_optimizer()
    trainer.step, trainer.skipped_steps = 0, 0
    return trainer


# ---------------------------------------------------------------- training throughput

def run_updates(trainer: Trainer, batches: list[Batch], deadline: float = float("inf")) -> dict:
    """Trainer.backward + update on each batch, each timed (synchronised) on its own; stops
    early at the deadline (time.monotonic), after at least one update."""
    times, audio, utts, losses = [], 0.0, 0, []
    for batch in batches:
        if times and time.monotonic() > deadline:
            break
        sync(trainer.device)
        t0 = time.perf_counter()
        losses.append(trainer.backward(batch, sync=True))
        trainer.update()
        sync(trainer.device)
        times.append(time.perf_counter() - t0)
        audio += trainer.batch_seconds(batch.feat_lens)
        utts += len(batch.ids)
    return {"times": times, "audio_s": audio, "utts": utts, "losses": losses}


def throughput(size, amp: str, batches: list[Batch], warmup: int, device: torch.device,
               vocab, deadline: float, featurizer=None) -> dict:
    """Audio-hours per GPU-hour (= audio seconds per wall second) of `len(batches) - warmup`
    timed updates after `warmup` untimed ones; peak memory and utilisation of the device."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    n_feats = featurizer.dim if featurizer is not None else N_FEATS
    trainer = bench_trainer(size, amp, device, vocab, n_feats, updates=len(batches),
                            featurizer=featurizer)
    run_updates(trainer, batches[:warmup])
    with UtilSampler(device) as util:
        run = run_updates(trainer, batches[warmup:], deadline)
    total = sum(run["times"])
    return {"kind": "throughput", "model": size.name, "amp": AMP_NAMES[amp], "device": device.type,
            "parameters_m": count_parameters(trainer.model) / 1e6,
            "audio_h_per_gpu_h": run["audio_s"] / total,
            "timed_updates": len(run["times"]), "planned_updates": len(batches) - warmup,
            "median_step_s": statistics.median(run["times"]),
            "audio_s_per_batch": run["audio_s"] / len(run["times"]),
            "utts_per_batch": run["utts"] / len(run["times"]),
            "last_loss": run["losses"][-1], "skipped_updates": trainer.skipped_steps,
            "peak_mem_gib": peak_memory_gib(device),
            "gpu_util_pct": util.mean(), "gpu_util_source": util.source}


def phases(size, amp: str, batches: list[Batch], warmup: int, device: torch.device, vocab,
           deadline: float) -> dict:
    """The share of an update spent in each phase of asr.bench.step's StepPhases (those of
    `make bench-train`), synchronised at every phase boundary on CUDA, so the update is a little
    slower than unmeasured: data + other (the batch, its lengths and targets to the device, CMVN,
    the log-probs to fp32), front-end, RNN, output, CTC, backward (with the loss's .item()),
    optimiser = Trainer.update (unscale, clip, AdamW, zero_grad); forward = front-end + RNN +
    output. Per phase its mean over the timed updates."""
    trainer = bench_trainer(size, amp, device, vocab, updates=len(batches))
    run_updates(trainer, batches[:warmup])
    clock = StepPhases(trainer, sync=True)
    try:
        for batch in batches[warmup:]:
            if clock.times["optimiser"] and time.monotonic() > deadline:
                break
            clock.update(trainer, batch)
    finally:
        clock.close()
    updates = len(clock.times["optimiser"])
    seconds = {p: sum(clock.times[p]) / updates for p in PHASES}
    step = sum(seconds.values())  # the phases cover the update: trainer.backward to update's end
    share = {p: s / step for p, s in seconds.items()}
    return {"kind": "phases", "model": size.name, "amp": AMP_NAMES[amp], "timed_updates": updates,
            "step_s": step, "share": share, "seconds_per_update": seconds,
            "forward_share": sum(share[p] for p in FORWARD)}


def waveform_throughput(size, amp: str, batches: list[Batch], warmup: int,
                        device: torch.device, vocab, deadline: float) -> dict:
    """Training from waveforms featurised on the device (features.on_device: the project's
    FeatureExtractor, torchaudio's MelSpectrogram), and the featuriser alone (with the
    waveforms' host -> device copy) in times real time."""
    featurizer = FeatureExtractor(FeatureConfig()).to(device)
    featurizer(batches[0].feats[:1, :SAMPLE_RATE].to(device))  # FFT plan, kernels
    sync(device)
    t0 = time.perf_counter()
    for batch in batches:
        featurizer(batch.feats.to(device, non_blocking=True))
    sync(device)
    alone = time.perf_counter() - t0
    audio = sum(float(b.feat_lens.sum()) for b in batches) / SAMPLE_RATE
    result = throughput(size, amp, batches, warmup, device, vocab, deadline, featurizer)
    return {**result, "kind": "waveform", "featuriser_x_realtime": audio / alone}


# ---------------------------------------------------------------- correctness

class tf32_off:
    """cuDNN's TF32 off in a block (it is on by default for cuDNN's convolutions and RNNs), so
    CUDA's fp32 is compared with the CPU's fp32, not with TF32's 10-bit mantissa."""

    def __enter__(self):
        self.cudnn, self.matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False

    def __exit__(self, *exc):
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = self.cudnn, self.matmul


def grad_errors(reference: torch.nn.Module, candidate: torch.nn.Module) -> dict:
    """Relative error of the candidate's gradients: over all (norm of the difference / norm of
    the reference) and of the worst single tensor."""
    diff2 = ref2 = 0.0
    worst, worst_name = 0.0, ""
    for (name, a), (_, b) in zip(reference.named_parameters(), candidate.named_parameters()):
        ga = a.grad if a.grad is not None else torch.zeros_like(a)
        gb = b.grad.detach().cpu() if b.grad is not None else torch.zeros_like(ga)
        d, r = float((gb.float() - ga.float()).norm()), float(ga.float().norm())
        diff2, ref2 = diff2 + d * d, ref2 + r * r
        if d / max(r, 1e-12) > worst:
            worst, worst_name = d / max(r, 1e-12), name
    return {"grad_rel_err": (diff2 ** 0.5) / max(ref2 ** 0.5, 1e-12), "worst_tensor_rel_err": worst,
            "worst_tensor": worst_name}


def parity(size, batch: Batch, device: torch.device, vocab, loss_tol: float = 1e-4,
           grad_tol: float = 1e-3) -> dict:
    """Loss and gradients of one batch from the same weights: the reference is the CPU's
    padded path, the candidate CUDA's packed cuDNN path (without CUDA: the packed path on the
    CPU). fp32 with TF32 off and no dropout; also the candidate's bf16 loss (informational)."""
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    reference = bench_trainer(size, "none", cpu, vocab, dropout=0.0)
    losses = {}
    with tf32_off():
        losses["reference"] = reference.backward(batch, sync=True)
        for amp in ("none", "bf16"):
            candidate = bench_trainer(size, amp, device, vocab, dropout=0.0)
            candidate.model.load_state_dict(reference.model.state_dict())
            if device.type == "cpu":
                candidate.model.rnn.packed = True
            losses[amp] = candidate.backward(batch, sync=True)
            if amp == "none":
                errors = grad_errors(reference.model, candidate.model)
    loss_rel = abs(losses["none"] - losses["reference"]) / abs(losses["reference"])
    return {"kind": "parity", "model": size.name, "utterances": len(batch.ids),
            "reference": "CPU, padded", "candidate": f"{device.type}, packed",
            "loss_reference": losses["reference"], "loss_candidate": losses["none"],
            "loss_rel_err": loss_rel, **errors,
            "bf16_loss_rel_err": abs(losses["bf16"] - losses["reference"]) / abs(losses["reference"]),
            "tolerance": {"loss": loss_tol, "grad": grad_tol},
            "pass": loss_rel <= loss_tol and errors["grad_rel_err"] <= grad_tol}


def convergence(size, corpus: Batch, updates: int, device: torch.device, vocab, amp: str,
                deadline: float, lr: float = 3e-3) -> dict:
    """`updates` updates on one tiny fixed batch (tiny_corpus): the loss must fall to under
    a third of the first; then the greedy CER of the trained model on it (eval mode)."""
    torch.manual_seed(0)
    trainer = bench_trainer(size, amp, device, vocab, updates=updates, lr=lr,
                            warmup_steps=max(1, updates // 10), dropout=0.0)
    losses = []
    for _ in range(updates):
        if losses and time.monotonic() > deadline:
            break
        losses.append(trainer.backward(corpus, sync=True))
        trainer.update()
    trainer.model.eval()
    with torch.no_grad():
        log_probs, out_lens = trainer.model(corpus.feats.to(device), corpus.feat_lens.to(device))
    hyps = greedy_decode(log_probs.float().cpu(), out_lens.cpu(), vocab)
    refs = [clean(vocab.decode(t[:n].tolist())) for t, n in zip(corpus.targets, corpus.target_lens)]
    first, last = losses[0], statistics.fmean(losses[-10:])
    return {"kind": "convergence", "model": size.name, "amp": AMP_NAMES[amp],
            "utterances": len(corpus.ids), "updates": len(losses), "planned_updates": updates,
            "first_loss": first, "last_loss": last, "greedy_cer": error_rate(refs, hyps),
            "pass": last < first / 3}
