"""The ddp row of `python -m asr.bench.gpu`: the GPUs visible and NCCL, and with 2 or more GPUs
a few DistributedDataParallel updates of the Trainer's own DDP wrapping in spawned processes
(ddp_check in the benchmark's process, ddp_worker in each rank's).
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from types import SimpleNamespace

import torch
import torch.distributed as dist

from asr.bench.gpu_batches import synthetic_batches
from asr.bench.gpu_sections import bench_trainer, run_updates
from asr.text.vocab import CharVocab


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_worker(rank: int, world: int, backend: str, size: dict, utt: dict, batch_frames: int,
               updates: int, out: str) -> None:
    """One rank of the DDP check: Trainer's DistributedDataParallel model (build_model with
    world > 1), `updates` updates on its own batches; rank 0 writes the result to `out`."""
    cuda = backend == "nccl"
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    else:
        torch.set_num_threads(1)
    dist.init_process_group(backend, rank=rank, world_size=world)
    try:
        vocab = CharVocab()
        torch.manual_seed(0)
        trainer = bench_trainer(SimpleNamespace(**size), "bf16" if cuda else "none", device, vocab,
                                updates=updates, world=world, rank=rank)
        batches = synthetic_batches(updates, SimpleNamespace(**utt), len(vocab), batch_frames, 256,
                                    seed=rank + 1, pin=cuda)
        dist.barrier()
        run = run_updates(trainer, batches)
        sums = torch.stack([p.detach().double().sum() for p in trainer.model.parameters()])
        gathered = [torch.zeros_like(sums) for _ in range(world)]
        dist.all_gather(gathered, sums)
        audio = torch.tensor([run["audio_s"]], dtype=torch.float64, device=device)
        dist.all_reduce(audio)
        if rank == 0:
            spread = max(float((g - gathered[0]).abs().max()) for g in gathered)
            result = {"world": world, "backend": backend, "updates": len(run["times"]),
                      "update_seconds": sum(run["times"]), "audio_h_per_h_all_ranks":
                      float(audio) / sum(run["times"]), "param_spread": spread,
                      "params_equal": spread <= 1e-6 * float(gathered[0].abs().sum() + 1)}
            with open(out, "w", encoding="utf-8") as f:
                json.dump(result, f)
    finally:
        dist.destroy_process_group()


def ddp_check(entry, size, utt, batch_frames: int, updates: int, deadline: float,
              procs: int = 0, min_left_s: float = 45.0) -> dict:
    """The GPUs visible and NCCL; with 2 or more GPUs (or procs CPU processes on gloo, to test
    this check without GPUs) a few DDP updates in spawned processes (no torchrun), bounded by
    the deadline. entry: the picklable worker entry (asr.bench.gpu.ddp_entry)."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    result = {"kind": "ddp", "gpus": gpus,
              "nccl_available": dist.is_available() and dist.is_nccl_available()}
    world, backend = (procs, "gloo") if procs else (min(gpus, 8), "nccl")
    if world < 2:
        return {**result, "multi_process": f"not run: {gpus} GPU visible (needs 2 or more)"}
    if deadline - time.monotonic() < min_left_s:  # spawning and NCCL set-up take a while
        return {**result, "multi_process": "not run: time guard"}
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(free_port())
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "ddp.json")
        args = (world, backend, vars(size), vars(utt), batch_frames, updates, out)
        procs_ctx = torch.multiprocessing.start_processes(entry, args=args, nprocs=world,
                                                          join=False, start_method="spawn")
        while not procs_ctx.join(timeout=1):
            if time.monotonic() > deadline:
                for p in procs_ctx.processes:
                    p.kill()
                raise TimeoutError(f"DDP check of {world} processes passed its deadline")
        with open(out, encoding="utf-8") as f:
            return {**result, "multi_process": "ok", **json.load(f)}
