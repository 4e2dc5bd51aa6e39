"""`make bench-gpu`: everything worth knowing about one GPU machine, in one command (< 8 min on
an H100), with no data on disk and no network.

    python -m asr.bench.gpu [--out bench-gpu.json] [--budget-s 390] [--cpu-smoke]

Sections, each caught on its own (an error is recorded and the next section runs), printed as
a table row when done and saved at once to the JSON (written atomically after every section):

* parity: loss and gradients of one batch on CUDA (packed cuDNN path) equal the CPU's (padded
  path) from the same weights, fp32 with TF32 off;
* throughput: audio-hours per GPU-hour of 3xBiLSTM-256, 5xBiLSTM-512 (recipes/builtin/gpu.yaml)
  and 5xBiLSTM-1024 at bf16 and fp32 autocast, on LibriSpeech-like batches (2-20 s
  utterances, 80-dim fbank at 10 ms, gpu.yaml's 40,000-frame batches), with peak GPU memory
  and GPU utilisation; target: 5xBiLSTM-512 bf16 >= 1,000 audio-hours per GPU-hour;
* phases: the share of an update in each of bench-train's phases (asr.bench.step.StepPhases):
  data + other, front-end, RNN, output, CTC, backward, optimiser;
* waveform: the same from waveforms featurised on the GPU (features.on_device);
* convergence: a few hundred updates on a tiny fixed corpus drive the loss down;
* decoder: torchaudio's CUDA CTC beam search, its real-time factor and agreement with the
  project's CPU beam search (greedy where flashlight-text is missing);
* ddp: the GPUs visible; with 2 or more, a few DistributedDataParallel updates over NCCL.

Every update is the project's own (CTCModel, Trainer.build_model/build_optimizer/backward/
update); each timing is a fixed number of updates after warm-up, synchronised. A global budget
(--budget-s) skips what would not fit, each section has a cap, and a watchdog ends the process
if it overruns anyway. Without CUDA (or with --cpu-smoke) it runs tiny sizes on the CPU in
well under a minute and reports the CUDA-only checks as skipped. Oldest torch: 2.11 (with
torchaudio 2.11, the project's floor); nothing newer is used. Modules the benchmark never calls
but that project modules import (pyyaml, tqdm, jiwer, soundfile) are stubbed when missing, so a
bare torch + torchaudio + numpy image runs it (docs/gpu.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import faulthandler
import functools
import importlib
import sys
import time
from dataclasses import dataclass

import torch

# the standard library and torch only (the stubs go in before any project module loads)
from asr.bench.gpu_machine import machine_info, machine_line, stub_missing_modules
from asr.bench.gpu_report import Report, run_section

TARGET = "5xBiLSTM-512 bf16 >= 1,000 audio-hours per GPU-hour"  # ASCII: any terminal


@dataclass(frozen=True)
class ModelSize:
    """A BiLSTM stack: layers x hidden units per direction, after the conv front-end."""

    layers: int
    hidden: int
    conv_channels: int = 32
    dropout: float = 0.1

    @property
    def name(self) -> str:
        return f"{self.layers}xBiLSTM-{self.hidden}"


@dataclass(frozen=True)
class Utterances:
    """Synthetic utterance lengths: normal(mean_s, sd_s) clipped to [min_s, max_s] seconds,
    transcripts of chars_per_s characters a second (LibriSpeech reads ~15)."""

    min_s: float = 2.0
    max_s: float = 20.0
    mean_s: float = 12.5
    sd_s: float = 4.5
    chars_per_s: float = 15.0


GPU_RECIPE = ModelSize(5, 512, conv_channels=64, dropout=0.2)  # recipes/builtin/gpu.yaml (tested)


@dataclass(frozen=True)
class Settings:
    """Sizes and step budgets of one run (gpu_settings, smoke_settings)."""

    mode: str
    sizes: tuple[ModelSize, ...]           # throughput rows, each at every amp
    target: ModelSize                      # the target's size; also the phases and waveform rows
    amps: tuple[str, ...] = ("bf16", "none")
    utterances: Utterances = Utterances()
    batch_frames: int = 40000              # gpu.yaml's train.batch_frames / max_batch_utts
    max_batch_utts: int = 256
    warmup: int = 3                        # untimed updates before each timing
    steps: int = 20                        # timed updates per throughput row
    phase_steps: int = 10
    wave_steps: int = 8
    parity_size: ModelSize = ModelSize(3, 256)
    parity_utts: Utterances = Utterances(2.0, 8.0, 5.0, 2.0)
    parity_count: int = 8
    converge_size: ModelSize = ModelSize(3, 256)
    converge_utts: int = 8
    converge_updates: int = 300
    converge_amp: str = "bf16"             # the smoke run's CPU is 5x slower at bf16 than fp32
    decode_count: int = 64
    decode_beam: int = 10
    ddp_updates: int = 3
    budget_s: float = 390.0                # all sections; the watchdog ends the process at +60 s
    time_scale: float = 1.0                # on the sections' caps and least seconds left to start
    target_rate: float = 1000.0            # audio-hours per GPU-hour of the target size, bf16


def gpu_settings() -> Settings:
    return Settings("gpu", (ModelSize(3, 256), GPU_RECIPE, ModelSize(5, 1024, 64, 0.2)), GPU_RECIPE)


def smoke_settings() -> Settings:
    """Tiny models and short batches: every section's code path on the CPU in seconds."""
    tiny = ModelSize(2, 32, conv_channels=8)
    return Settings("cpu-smoke", (ModelSize(1, 32, conv_channels=8), tiny), tiny,
                    utterances=Utterances(1.0, 3.0, 2.0, 0.6), batch_frames=1500, max_batch_utts=16,
                    warmup=1, steps=2, phase_steps=2, wave_steps=2,
                    parity_size=tiny, parity_utts=Utterances(1.0, 2.0, 1.5, 0.3), parity_count=3,
                    converge_size=ModelSize(1, 48, conv_channels=8), converge_utts=3,
                    converge_updates=40, converge_amp="none", decode_count=4, ddp_updates=2,
                    budget_s=50.0, time_scale=0.5)


# ---------------------------------------------------------------- the run

def ddp_entry(rank: int, *args) -> None:
    """The spawned DDP processes' entry: stubs first (a fresh interpreter), then the worker."""
    stub_missing_modules()
    from asr.bench.gpu_ddp import ddp_worker
    ddp_worker(rank, *args)


def sections(s: Settings, device: torch.device, ddp_procs: int):
    """(name, fn(deadline), cap s, min s) of every section, in running order: an H100's
    seconds times s.time_scale (the DDP check's own, as it spawns only with 2+ GPUs or
    ddp_procs); batches are made once, on first use."""
    from asr.bench import gpu_batches as gb
    from asr.bench import gpu_ddp, gpu_decoder
    from asr.bench import gpu_sections as gs
    from asr.text.vocab import CharVocab
    vocab, cuda = CharVocab(), device.type == "cuda"

    @functools.cache
    def batches(waveform: bool, count: int):
        return gb.synthetic_batches(count, s.utterances, len(vocab), s.batch_frames,
                                    s.max_batch_utts, seed=1, waveform=waveform, pin=cuda)

    def row(size: ModelSize, amp: str):
        return lambda d: gs.throughput(size, amp, batches(False, s.warmup + s.steps), s.warmup,
                                       device, vocab, d)

    def rows(sizes: list[ModelSize]) -> list:
        return [(f"throughput {size.name} {gs.AMP_NAMES[amp]}", row(size, amp), 40 * k, 10 * k)
                for size in sizes for amp in s.amps]

    # the target and the correctness checks first: a slow machine's time guard skips the rest
    k, amp = s.time_scale, s.amps[0]  # bf16: the phases and waveform rows
    return [
        ("parity", lambda d: gs.parity(
            s.parity_size, gb.utterance_batch(s.parity_count, s.parity_utts, len(vocab), seed=2),
            device, vocab), 60 * k, 5 * k),
        *rows([s.target]),
        (f"phases {s.target.name} {gs.AMP_NAMES[amp]}", lambda d: gs.phases(
            s.target, amp, batches(False, s.warmup + s.steps)[:s.warmup + s.phase_steps], s.warmup,
            device, vocab, d), 40 * k, 10 * k),
        (f"convergence {s.converge_size.name} {gs.AMP_NAMES[s.converge_amp]}",
         lambda d: gs.convergence(s.converge_size, gb.tiny_corpus(s.converge_utts, len(vocab), seed=3),
                                  s.converge_updates, device, vocab, s.converge_amp, d),
         45 * k, 10 * k),
        ("decoder", lambda d: gpu_decoder.decoders(s.utterances, s.decode_count, s.decode_beam, device,
                                                   vocab), 45 * k, 10 * k),
        (f"waveform {s.target.name} {gs.AMP_NAMES[amp]}", lambda d: gs.waveform_throughput(
            s.target, amp, batches(True, s.warmup + s.wave_steps), s.warmup, device, vocab, d),
         45 * k, 15 * k),
        *rows([m for m in s.sizes if m != s.target]),
        ("ddp", lambda d: gpu_ddp.ddp_check(importlib.import_module("asr.bench.gpu").ddp_entry,
                                            s.parity_size, s.utterances, s.batch_frames,
                                            s.ddp_updates, d, ddp_procs), 90, 1)]


def reraise(error: Exception, deadline: float):
    raise error


def target_result(s: Settings, report: Report) -> dict:
    """The target's figure and verdict (met: None when not measured)."""
    rate = report.data["sections"].get(f"throughput {s.target.name} bf16", {}).get("audio_h_per_gpu_h")
    if s.mode != "gpu":
        return {"what": TARGET, "measured": None, "met": None,
                "note": f"not measured: CPU smoke run ({rate or 0:,.0f} audio-h/h of a tiny model)"}
    if rate is None:
        return {"what": TARGET, "measured": None, "met": None, "note": "not measured: see its row"}
    return {"what": TARGET, "measured": rate, "met": rate >= s.target_rate,
            "note": f"{rate:,.0f} audio-h/GPU-h: {'MET' if rate >= s.target_rate else 'NOT MET'}"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m asr.bench.gpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench-gpu.json", help="the JSON report (default %(default)s)")
    p.add_argument("--cpu-smoke", action="store_true",
                   help="tiny sizes on the CPU (automatic without CUDA)")
    p.add_argument("--budget-s", type=float, help="seconds for all sections (default 390; smoke 50)")
    p.add_argument("--ddp-cpu-procs", type=int, default=0,
                   help="run the DDP check with this many CPU processes on gloo (tests the check)")
    args = p.parse_args(argv)
    started = time.monotonic()
    if hasattr(sys.stdout, "reconfigure"):  # a non-ASCII error message on an ASCII terminal
        sys.stdout.reconfigure(errors="backslashreplace")
    stubbed = stub_missing_modules()
    cuda = torch.cuda.is_available() and not args.cpu_smoke
    s = gpu_settings() if cuda else smoke_settings()
    if args.budget_s:
        s = dataclasses.replace(s, budget_s=args.budget_s)
    device = torch.device("cuda", 0) if cuda else torch.device("cpu")
    if not cuda:  # the smoke run checks code paths: one thread is steady on a busy machine
        torch.set_num_threads(1)
    faulthandler.dump_traceback_later(s.budget_s + 60, exit=True)  # a hang still ends the run
    try:
        machine = machine_info()
        print(f"asr.bench.gpu ({s.mode}{'' if cuda or args.cpu_smoke else ': no CUDA'}), budget "
              f"{s.budget_s:.0f} s, JSON {args.out}\nmachine: {machine_line(machine)}"
              f"{'; stubbed (not installed, unused): ' + ', '.join(stubbed) if stubbed else ''}\n"
              f"target: {TARGET}\n\n| section | result | s |\n|---|---|---|", flush=True)
        report = Report(args.out, {"bench": "asr.bench.gpu", "mode": s.mode, "target": TARGET,
                                   "machine": machine, "stubbed_modules": stubbed,
                                   "settings": dataclasses.asdict(s)})
        end = started + s.budget_s
        try:
            plan = sections(s, device, args.ddp_cpu_procs)
        except Exception as e:  # the project's modules do not import here: the JSON says why
            plan = [("setup", functools.partial(reraise, e), 60, 0)]
        for name, fn, cap_s, min_s in plan:
            run_section(report, name, fn, end, cap_s, min_s)
        report.data["target"] = target = target_result(s, report)
        report.data["elapsed_s"] = time.monotonic() - started
        report.save()
    finally:
        faulthandler.cancel_dump_traceback_later()
    failed = [n for n, e in report.data["sections"].items() if e["status"] == "failed"]
    print(f"\ntarget {TARGET}: {target['note']}\n{len(failed)} section(s) failed"
          f"{': ' + ', '.join(failed) if failed else ''}; wrote {args.out} in "
          f"{report.data['elapsed_s']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
