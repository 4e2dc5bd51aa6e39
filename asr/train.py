"""CTC training: one readable loop.

    asr train --config recipes/builtin/config.yaml train.lr=2e-3 model.rnn_type=gru

Single process by default; under torchrun (RANK/WORLD_SIZE/LOCAL_RANK set) each process trains
on its share of every step with DistributedDataParallel and only rank 0 logs and checkpoints.
Per epoch: dev loss and greedy dev WER/CER; checkpoints/last.pt always, best.pt when dev CER
improves (both written atomically); `--resume` continues from last.pt exactly where it stopped.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from asr import config as config_mod, finetune
from asr.checkpoint import epoch_checkpoints, load_checkpoint, save_checkpoint
from asr.config import Config
from asr.data.dataset import AsrDataset, Batch, BucketingBatchSampler, collate
from asr.data.effects import item_generator
from asr.data.features import FeatureExtractor
from asr.data.store import open_store
from asr.data.training import open_training_data
from asr.decoding.decoders import greedy_decode
from asr.model import CTCModel, count_parameters, cpu_autocast_rnn_works
from asr.scoring.score import score
from asr.text.units import build_vocab, units_state
from asr.text.vocab import PhoneVocab
from asr.train_log import RunLog, setup_logging
from asr.utils import pick_device, set_malloc_mmap_threshold, tcmalloc_loaded
from asr.run_folder import RunFolder

log = logging.getLogger("asr.train")


def lr_factor(step: int, warmup: int, total: int, final_ratio: float, time_fraction: float = 0.0) -> float:
    """Linear warm-up to the peak, then cosine decay to final_ratio * peak.

    Decay progress is the larger of the step fraction and, with a wall-time budget
    (train.max_minutes), the fraction of the budget used: a time-bounded run still ends on a
    fully decayed learning rate whatever the machine's speed.
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, max((step - warmup) / max(1, total - warmup), time_fraction))
    return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


MIN_TRAIN_MINUTES = 1.0  # what train.finish_by leaves training at the least


def wall_budget_minutes(max_minutes: float, finish_by: float, start: float) -> float:
    """Training's wall-time budget in minutes (0 = none) counted from start (a Unix time; a
    resumed run's start lies its earlier training time back): max_minutes, capped by the
    minutes from start to finish_by (a Unix time) when that is set, but never under
    MIN_TRAIN_MINUTES."""
    if not finish_by:
        return max_minutes
    left = max(MIN_TRAIN_MINUTES, (finish_by - start) / 60)
    return min(max_minutes, left) if max_minutes else left


def autocast_for(device: torch.device, amp: str):
    """Autocast for train.amp ("none", "bf16" or "fp16"; checked by TrainConfig)."""
    if amp == "none":
        return nullcontext()
    return torch.autocast(device.type, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[amp])


def rnn_needs_fp32(device: torch.device, amp: str, rnn_type: str) -> bool:
    """Whether the RNN layers must run in fp32 inside train.amp's autocast: on a CPU without a
    bf16 kernel for them (oneDNN's bf16 LSTM needs AVX-512), said once in the log."""
    if device.type != "cpu" or amp != "bf16" or cpu_autocast_rnn_works(rnn_type):
        return False
    log.warning("train.amp=bf16: this CPU has no bf16 %s kernel (oneDNN needs AVX-512), so the "
                "%s layers run in fp32 and the rest in bf16; train.amp=none may be as fast here",
                rnn_type.upper(), rnn_type.upper())
    return True


def rng_state() -> dict:
    state = {"python": list(random.getstate()[1]), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate((3, tuple(state["python"]), None))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """Holds the model, optimiser, data and counters of one training run."""

    def __init__(self, cfg: Config, resume: bool = False):
        self.cfg = cfg
        self.join_run(cfg.train, resume)
        self.build_model(*self.open_data(), self.init)  # the features' size and CMVN statistics
        self.build_optimizer()
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.positions: list = [None]  # each rank's data.position at the last checkpoint
        self.best_cer = float("inf")
        self.skipped_steps = 0
        self.trained_s, self.start = 0.0, None  # training seconds before this session; its start
        rate = "PER" if isinstance(self.vocab, PhoneVocab) else "WER"  # phones are its words
        self.records = RunLog(self.run_dir, self.rank, self.device, rate)
        if resume:
            self.resume()
        log.info("model: %s, %.2fM parameters; %d training utterances (%.2f h%s) in %s%d updates/epoch; "
                 "device %s, %d thread(s), world size %d, allocator %s", cfg.model.rnn_type.upper(),
                 count_parameters(self.model) / 1e6, self.data.utterances, self.data.hours,
                 ", streamed from shards" if self.data.streamed else "",
                 "~" if self.data.streamed else "", self.steps_per_epoch, self.device,
                 torch.get_num_threads(), self.world, self.allocator)

    def join_run(self, tc, resume: bool = False) -> None:
        """This process's part of the run (train section tc): its rank, the log, the device
        (and the process group under torchrun), threads, allocator and seeds; rank 0 writes
        the run's config.yaml (with the architecture train.init_from gives: asr.finetune)."""
        self.rank = int(os.environ.get("RANK", 0))
        self.world = int(os.environ.get("WORLD_SIZE", 1))
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        self.run_dir = Path(tc.exp_dir)
        setup_logging(self.run_dir, self.rank)
        self.device = pick_device(tc.device, local_rank, "train.device")
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        if tc.threads:
            torch.set_num_threads(tc.threads)
        # flat memory over long runs: tcmalloc when `asr train` preloaded it, else glibc's
        # allocator with a fixed mmap threshold
        self.allocator = "tcmalloc" if tcmalloc_loaded() else (
            f"glibc, mmap threshold {tc.malloc_mmap_threshold_mb} MB"
            if set_malloc_mmap_threshold(tc.malloc_mmap_threshold_mb) else "glibc")
        random.seed(tc.seed)
        torch.manual_seed(tc.seed)
        self.init = finetune.prepare(self.cfg, self.run_dir, resume)
        if self.rank == 0:
            config_mod.save_config(self.cfg, RunFolder(self.run_dir).config)

    def open_data(self):
        """The vocabulary, the dev set and this rank's training batches (with their augmenter);
        returns the features' size and CMVN statistics, for the model."""
        cfg = self.cfg
        self.vocab = build_vocab(cfg.data)  # bpe/unigram: trains <root>/lang/*.model once
        on_device = cfg.features.on_the_fly and cfg.features.on_device
        self.dev_store = open_store(cfg.data.root, cfg.data.dev_split, cfg.features, on_device)
        self.data, self.augment = open_training_data(cfg, self.vocab, self.rank, self.world,
                                                     pin_memory=self.device.type == "cuda")
        dim, cmvn = self.data.dim, self.data.cmvn()
        self.dev_set = AsrDataset(self.dev_store, self.vocab, cfg.model.subsample, 0.0, "dev")
        # with features.on_device the loader yields padded waveforms, featurised here per batch
        self.featurizer = FeatureExtractor(cfg.features).to(self.device) if on_device else None
        return dim, cmvn

    def build_model(self, dim: int, cmvn, init=None) -> None:
        """The CTC model on the device, from train.init_from's weights with init (asr.finetune);
        self.ddp is what a training step calls (compiled, in DistributedDataParallel when set so)."""
        tc = self.cfg.train
        self.model = CTCModel(self.cfg.model, dim, len(self.vocab))
        self.model.set_cmvn(*cmvn)
        self.init_report = finetune.initialise(self.model, self.vocab, tc, init)  # and train.freeze
        self.model.to(self.device)
        self.model.rnn.fp32 = rnn_needs_fp32(self.device, tc.amp, self.cfg.model.rnn_type)
        self.ddp = self.model
        if tc.compile:
            self.ddp = torch.compile(self.model)
        if self.world > 1:
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.ddp)

    def build_optimizer(self) -> None:
        """AdamW (fused: one pass over all tensors, not a loop per tensor: 3-5x faster on CPU),
        its learning-rate schedule over the run's updates, the gradient scaler (fp16), CTC."""
        tc = self.cfg.train
        self.optimizer = torch.optim.AdamW(finetune.trainable(self.model), lr=tc.lr,
                                           weight_decay=tc.weight_decay, fused=True)
        self.steps_per_epoch = max(1, self.data.per_epoch // tc.accum_steps)
        self.total_steps = tc.epochs * self.steps_per_epoch
        if tc.max_steps:
            self.total_steps = min(self.total_steps, tc.max_steps)
        self.time_fraction = 0.0  # of train.max_minutes used, when set
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, tc.warmup_steps, self.total_steps,
                                                   tc.final_lr_ratio, self.time_fraction))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=tc.amp == "fp16")
        self.ctc = torch.nn.CTCLoss(blank=self.vocab.blank, reduction="sum", zero_infinity=True)

    # -- checkpoints ---------------------------------------------------------------------------
    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "config": config_mod.to_dict(self.cfg), "vocab": self.vocab.tokens,
                **units_state(self.vocab),  # the sentencepiece model of bpe/unigram units
                "n_feats": self.model.cmvn_mean.numel(), "step": self.step, "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch, "data_positions": self.positions,
                "best_cer": self.best_cer, "train_seconds": self.train_seconds(),
                "skipped_steps": self.skipped_steps, "rng": rng_state()}

    def train_seconds(self) -> float:
        """Wall time spent training so far, earlier sessions of a resumed run included."""
        return time.time() - self.start if self.start is not None else self.trained_s

    def save(self, name: str) -> None:
        if self.rank == 0:
            save_checkpoint(self.state(), RunFolder(self.run_dir).checkpoint(name))

    def resume(self) -> None:
        path = RunFolder(self.run_dir).checkpoint("last")
        if not path.exists():
            log.info("no %s: starting from scratch", path)
            return
        ckpt = load_checkpoint(path)
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.step, self.epoch = ckpt["step"], ckpt["epoch"]
        self.batch_in_epoch, self.best_cer = ckpt["batch_in_epoch"], ckpt["best_cer"]
        self.positions = ckpt.get("data_positions") or [self.batch_in_epoch]
        if len(self.positions) != self.world and self.data.streamed and self.batch_in_epoch:
            raise ValueError(f"{path}: saved by {len(self.positions)} rank(s); a run streaming "
                             f"shards resumes mid-epoch with as many, not {self.world}")
        self.skipped_steps = ckpt["skipped_steps"]
        self.trained_s = float(ckpt.get("train_seconds", 0.0))  # 0 from versions without it
        set_rng_state(ckpt["rng"])
        log.info("resumed from %s at epoch %d, step %d, after %.1f min of training", path,
                 self.epoch, self.step, self.trained_s / 60)

    # -- training ------------------------------------------------------------------------------
    def backward(self, batch: Batch, sync: bool) -> float:
        """Forward + backward of one batch; gradients accumulate. Returns the loss per utterance.

        The CTC loss runs in fp32 on (T, B, V), summed over the batch and divided by its size
        and by accum_steps, so accumulated or data-parallel updates average over batches.
        """
        feats, feat_lens = self.to_features(batch.feats, batch.feat_lens)
        if self.featurizer is not None and self.augment is not None:  # features made here
            feats = self.spec_augment_batch(feats, feat_lens)
        no_sync = self.ddp.no_sync if (self.world > 1 and not sync) else nullcontext
        with no_sync():
            with autocast_for(self.device, self.cfg.train.amp):
                log_probs, out_lens = self.ddp(feats, feat_lens.to(self.device))
            loss = self.ctc(log_probs.float().transpose(0, 1), batch.targets.to(self.device), out_lens,
                            batch.target_lens.to(self.device)) / len(feats)
            self.scaler.scale(loss / self.cfg.train.accum_steps).backward()
        return loss.item()

    def batch_seconds(self, lengths: torch.Tensor) -> float:
        """Audio seconds in a batch from its lengths (samples with features.on_device, else frames)."""
        if self.featurizer is not None:
            return float(lengths.sum()) / self.cfg.features.sample_rate
        return float(lengths.sum()) * self.cfg.features.hop_ms / 1000

    def to_features(self, x: torch.Tensor, lengths: torch.Tensor):
        """Move a batch to the device; with features.on_device, x holds padded waveforms
        (B, samples) and becomes log-mel features (B, frames, dim) computed there."""
        x = x.to(self.device, non_blocking=True)
        if self.featurizer is None:
            return x, lengths
        return self.featurizer(x), 1 + lengths // self.featurizer.hop

    def spec_augment_batch(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """SpecAugment of features computed on the device (features.on_device), each
        utterance's valid frames masked with draws seeded by (seed, epoch, step, position)."""
        out = feats.clone()
        for b, n in enumerate(lengths.tolist()):
            g = item_generator(self.cfg.train.seed, self.epoch, self.step * 4096 + b)
            out[b, :n] = self.augment.spec_augment(feats[b, :n], g)
        return out

    def update(self) -> bool:
        """Clip and apply the accumulated gradients; a non-finite gradient skips the update
        (counted and logged) and training goes on. Returns whether the update was applied."""
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
        applied = bool(torch.isfinite(grad_norm))
        if applied:
            self.scaler.step(self.optimizer)
            self.scheduler.step()
        else:
            self.skipped_steps += 1
            log.warning("update %d: non-finite loss or gradient, skipped (%d so far)",
                        self.step + 1, self.skipped_steps)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return applied

    def train(self) -> dict:
        tc = self.cfg.train
        self.records.open()
        # a resumed run counts the training time before its checkpoint: its budget and the
        # learning rate's time-based decay go on from where they were
        start = self.start = time.time() - self.trained_s
        self.max_minutes = wall_budget_minutes(tc.max_minutes, tc.finish_by, start)
        if tc.finish_by and self.rank == 0:
            log.info("wall-time budget %.1f min (train.max_minutes %g, capped by train.finish_by)",
                     self.max_minutes, tc.max_minutes)
        stopped = self.done(start)  # a resumed run may have finished already
        while self.epoch < tc.epochs and not stopped:
            position = self.positions[self.rank % len(self.positions)] if self.batch_in_epoch else None
            self.data.set_epoch(self.epoch, position)
            bar = tqdm(total=self.data.per_epoch, initial=self.batch_in_epoch,
                       desc=f"epoch {self.epoch + 1}/{tc.epochs}", disable=self.rank != 0,
                       dynamic_ncols=True, mininterval=2.0)
            self.model.train()
            audio_s, t0, losses, update_losses = 0.0, time.time(), [], []
            for batch in self.epoch_batches():
                self.batch_in_epoch += 1
                if batch is None:  # every file of the batch unreadable (on-the-fly features)
                    continue
                at_update = self.batch_in_epoch % tc.accum_steps == 0
                loss = self.backward(batch, sync=at_update)
                update_losses.append(loss)
                audio_s += self.batch_seconds(batch.feat_lens) * self.world
                speed = audio_s / max(time.time() - t0, 1e-6)
                bar.update(1)
                if math.isfinite(loss):
                    losses.append(loss)
                    bar.set_postfix(loss=f"{loss:.2f}", speed=f"{speed:.0f}s/s", refresh=False)
                if not at_update:
                    continue
                if self.max_minutes:
                    self.time_fraction = (time.time() - start) / (self.max_minutes * 60)
                self.update()
                self.records.update(self.step, self.epoch + 1, update_losses,
                                    self.scheduler.get_last_lr()[0])
                update_losses = []
                if self.step % tc.log_every == 0:
                    self.records.progress(self.step, self.epoch + 1,
                                          losses[-tc.log_every * tc.accum_steps:],
                                          self.scheduler.get_last_lr()[0], speed)
                if tc.checkpoint_every and self.step % tc.checkpoint_every == 0:
                    self.gather_positions()
                    self.save("last")
                if self.done(start):
                    stopped = True
                    break
            bar.close()
            if update_losses:  # a stream ended between updates: drop the partial accumulation
                self.optimizer.zero_grad(set_to_none=True)
            self.gather_positions()
            if not stopped:
                self.epoch += 1
                self.batch_in_epoch = 0
            metrics = self.validate()
            self.records.evaluation(self.epoch, self.batch_in_epoch == 0, self.step,
                                    time.time() - start, losses, metrics)
            self.save_epoch_checkpoints(metrics["cer"])
        self.records.close()
        return {"step": self.step, "epoch": self.epoch, "best_cer": self.best_cer,
                "skipped_steps": self.skipped_steps, "minutes": (time.time() - start) / 60}

    def epoch_batches(self):
        """This rank's batches of the epoch. Streamed shards may run out a few batches sooner on
        one rank than on another: then every rank ends the epoch together (an all_reduce per
        batch), so no rank waits forever at the next gradient all-reduce."""
        if not (self.data.streamed and self.world > 1):
            yield from self.data
            return
        batches = iter(self.data)
        while True:
            batch = next(batches, StopIteration)
            have = torch.tensor([0.0 if batch is StopIteration else 1.0], device=self.device)
            dist.all_reduce(have, op=dist.ReduceOp.MIN)
            if not have.item():
                return
            yield batch

    def gather_positions(self) -> None:
        """Every rank's data position into self.positions (saved by rank 0 for resuming)."""
        if self.world > 1 and self.data.streamed:
            self.positions = [None] * self.world
            dist.all_gather_object(self.positions, self.data.position)
        else:
            self.positions = [self.data.position]

    def done(self, start: float) -> bool:
        """Whether max_steps or max_minutes is reached (agreed across ranks)."""
        tc = self.cfg.train
        over = bool((tc.max_steps and self.step >= tc.max_steps)
                    or (self.max_minutes and time.time() - start > self.max_minutes * 60))
        if self.world > 1:  # every rank must stop at the same update
            flag = torch.tensor([float(over)], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            over = bool(flag.item())
        return over

    def save_epoch_checkpoints(self, dev_cer: float) -> None:
        """best.pt when dev CER improved, last.pt always; with train.keep_epochs also
        epoch-<n>.pt, pruned to the newest keep_epochs."""
        if self.rank != 0:
            return
        if dev_cer < self.best_cer:
            self.best_cer = dev_cer
            self.save("best")
        self.save("last")
        if self.cfg.train.keep_epochs and self.batch_in_epoch == 0:
            self.save(f"epoch-{self.epoch}")
            ckpt_dir = RunFolder(self.run_dir).checkpoints
            old = epoch_checkpoints(ckpt_dir)[:-self.cfg.train.keep_epochs]
            for path in old:
                path.unlink()

    @torch.no_grad()
    def validate(self) -> dict:
        """Dev loss per utterance and greedy WER/CER."""
        self.model.eval()
        loader = torch.utils.data.DataLoader(
            self.dev_set, collate_fn=collate, generator=torch.Generator(),
            batch_sampler=BucketingBatchSampler(
                [self.dev_set.frames(i) for i in range(len(self.dev_set))],
                self.cfg.train.batch_frames * 2, 256, sortagrad=True))
        total, count, refs, hyps = 0.0, 0, {}, {}
        for batch in loader:
            if batch is None:
                continue
            feats, feat_lens = self.to_features(batch.feats, batch.feat_lens)
            log_probs, out_lens = self.model(feats, feat_lens.to(self.device))
            total += self.ctc(log_probs.transpose(0, 1), batch.targets.to(self.device), out_lens,
                              batch.target_lens.to(self.device)).item()
            count += len(batch.ids)
            texts = greedy_decode(log_probs.cpu(), out_lens.cpu(), self.vocab)
            for i, (uid, text) in enumerate(zip(batch.ids, texts)):
                hyps[uid] = text
                refs[uid] = self.vocab.decode(batch.targets[i, :batch.target_lens[i]].tolist())
        self.model.train()
        s = score(refs, hyps)
        return {"loss": total / count, "wer": s["wer"], "cer": s["cer"]}


def train(cfg: Config, resume: bool = False) -> dict:
    trainer = Trainer(cfg, resume=resume)
    try:
        return trainer.train()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
