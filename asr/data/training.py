"""Where the trainer's batches come from: a feature store (random access) or tar shards
streamed in order. Both sources give the Trainer the same small interface:

    data.set_epoch(epoch, position)   # position: None (the epoch's start) or a saved one
    for batch in data: ...            # this rank's Batches (asr.data.dataset.collate)
    data.position                     # resume point after the batches given (JSON-able)
    data.per_epoch                    # batches per epoch on this rank (shards: an estimate)

StoreBatches: AsrDataset + BucketingBatchSampler; every rank gets exactly per_epoch batches and
position is the number taken. ShardStreamBatches: ShardDataset + stream_batches; ranks read
whole shards, so they may run out a few batches apart (the trainer stops an epoch when the first
rank does: `streamed`), and position is the loader's per-reader state (BatchStream.state).
"""

from __future__ import annotations

import math

import torch

from asr.config import Config
from asr.data.dataset import AsrDataset, BucketingBatchSampler, collate


class StoreBatches:
    """Bucketed batches of an AsrDataset, re-formed every epoch (BucketingBatchSampler)."""

    streamed = False

    def __init__(self, dataset: AsrDataset, cfg: Config, rank: int, world: int, pin_memory: bool):
        tc = cfg.train
        self.dataset = dataset
        self.sampler = BucketingBatchSampler(
            [dataset.frames(i) for i in range(len(dataset))], tc.batch_frames, tc.max_batch_utts,
            tc.seed, tc.sortagrad, rank, world, tc.accum_steps, tc.bucketing, tc.rebucket)
        self.loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=self.sampler, collate_fn=collate, num_workers=tc.num_workers,
            pin_memory=pin_memory,
            generator=torch.Generator())  # own generator: the global RNG stays dropout's alone
        self.position = 0
        self.hours = sum(dataset.frames(i) for i in range(len(dataset))) * cfg.features.hop_ms / 3.6e6
        self.utterances = len(dataset)

    @property
    def per_epoch(self) -> int:
        return self.sampler.per_rank

    def set_epoch(self, epoch: int, position: int | None = None) -> None:
        self.position = position or 0
        self.sampler.set_epoch(epoch, self.position)
        self.dataset.epoch = epoch  # new augmentation draws every epoch

    def __iter__(self):
        for batch in self.loader:
            self.position += 1
            yield batch


class ShardStreamBatches:
    """Bucketed batches streamed from tar shards (data.train_shards; asr.data.shards)."""

    streamed = True

    def __init__(self, cfg: Config, vocab, rank: int, world: int, pin_memory: bool,
                 augment=None, raw_audio: bool = False):
        from asr.data.shards import ShardDataset
        tc = cfg.train
        self.cfg = cfg
        self.dataset = ShardDataset(
            cfg.data.train_shards, vocab, cfg.features, index=cfg.data.shard_index or None,
            subsample=cfg.model.subsample, max_duration=tc.max_duration,
            shuffle_buffer=tc.shuffle_buffer, seed=tc.seed, rank=rank, world_size=world,
            raw_audio=raw_audio, augment=augment, name=f"data.train_shards {cfg.data.train_shards}")
        self.pin_memory = pin_memory
        index = self.dataset.index or {}
        self.hours = index.get("duration", 0.0) / 3600
        self.utterances = index.get("samples", 0)
        self.epoch, self.start, self.position = 0, None, None

    @property
    def per_epoch(self) -> int:
        """Batches this rank is expected to take in an epoch (for the learning-rate schedule and
        the progress bar): its audio at ~5 % padding over the frame budget, or its utterances
        over max_batch_utts, whichever is more; without the shard index, 1000."""
        ds, tc = self.dataset, self.cfg.train
        if ds.counts is None:
            return 1000
        mine = ds.rank_shards()
        seconds = sum(ds.index["shards"][i]["duration"] for i in mine)
        frames = seconds * 1000 / self.cfg.features.hop_ms * 1.05
        return max(1, math.ceil(frames / tc.batch_frames),
                   math.ceil(sum(ds.counts[i] for i in mine) / tc.max_batch_utts))

    def set_epoch(self, epoch: int, position: dict | None = None) -> None:
        self.epoch, self.start, self.position = epoch, position, position
        self.dataset.set_epoch(epoch)

    def __iter__(self):
        from asr.data.shards import stream_batches
        tc = self.cfg.train
        stream = stream_batches(self.dataset, tc.batch_frames, self.epoch,
                                num_workers=tc.num_workers, max_batch_utts=tc.max_batch_utts,
                                sort_buffer=tc.sort_buffer, start=self.start,
                                pin_memory=self.pin_memory)
        self.position = stream.state
        for batch in stream:
            self.position = stream.state
            yield batch

