"""Where the trainer's batches come from: a feature store (random access) or tar shards
streamed in order. Both sources give the Trainer the same small interface:

    data.set_epoch(epoch, position)   # position: None (the epoch's start) or a saved one
    for batch in data: ...            # this rank's Batches (asr.data.dataset.collate)
    data.position                     # resume point after the batches given (JSON-able)
    data.per_epoch                    # batches per epoch on this rank (shards: an estimate)
    data.dim, data.cmvn()             # the features' size and CMVN statistics (for the model)

StoreBatches: AsrDataset + BucketingBatchSampler; every rank gets exactly per_epoch batches and
position is the number taken. ShardStreamBatches: ShardDataset + stream_batches; ranks read
whole shards, so they may run out a few batches apart (the trainer stops an epoch when the first
rank does: `streamed`), and position is the loader's per-reader state (BatchStream.state).

Each source gets its dataset and a Batching (the train section's batching keys and this rank's
share); open_training_data is the one place where the config's data, features, augment and
train sections become these arguments.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from asr.config import Config, TrainConfig
from asr.data.augment import augmenter_for
from asr.data.dataset import AsrDataset, BucketingBatchSampler, collate
from asr.data.store import open_store


@dataclasses.dataclass(frozen=True)
class Batching:
    """How a data source forms and loads this rank's batches: the train section's batching keys
    (rebucket: the sampler's jitter; sort_buffer: shards only), this process's rank of world,
    and whether the loader pins memory (CUDA)."""

    batch_frames: int
    max_batch_utts: int
    seed: int
    sortagrad: bool
    bucketing: bool
    rebucket: float
    accum_steps: int
    num_workers: int
    sort_buffer: int
    rank: int = 0
    world: int = 1
    pin_memory: bool = False

    @classmethod
    def of(cls, train: TrainConfig, rank: int = 0, world: int = 1,
           pin_memory: bool = False) -> Batching:
        """The batching keys of a train section, for rank `rank` of `world`."""
        return cls(train.batch_frames, train.max_batch_utts, train.seed, train.sortagrad,
                   train.bucketing, train.rebucket, train.accum_steps, train.num_workers,
                   train.sort_buffer, rank, world, pin_memory)


class StoreBatches:
    """Bucketed batches of an AsrDataset, re-formed every epoch (BucketingBatchSampler).
    hop_ms: the features' frame shift (features.hop_ms), for the hours said in the log."""

    streamed = False

    def __init__(self, dataset: AsrDataset, batching: Batching, hop_ms: float):
        b = batching
        self.dataset = dataset
        self.sampler = BucketingBatchSampler(
            [dataset.frames(i) for i in range(len(dataset))], b.batch_frames, b.max_batch_utts,
            b.seed, b.sortagrad, b.rank, b.world, b.accum_steps, b.bucketing, b.rebucket)
        self.loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=self.sampler, collate_fn=collate, num_workers=b.num_workers,
            pin_memory=b.pin_memory,
            generator=torch.Generator())  # own generator: the global RNG stays dropout's alone
        self.position = 0
        self.hours = sum(dataset.frames(i) for i in range(len(dataset))) * hop_ms / 3.6e6
        self.utterances = len(dataset)

    @property
    def per_epoch(self) -> int:
        return self.sampler.per_rank

    @property
    def dim(self) -> int:
        return self.dataset.store.dim

    def cmvn(self):
        return self.dataset.store.cmvn()

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

    def __init__(self, dataset, batching: Batching):
        self.dataset, self.batching = dataset, batching  # dataset: an asr.data.shards.ShardDataset
        index = self.dataset.index or {}
        self.hours = index.get("duration", 0.0) / 3600
        self.utterances = index.get("samples", 0)
        self.epoch, self.start, self.position = 0, None, None

    @property
    def per_epoch(self) -> int:
        """Batches this rank is expected to take in an epoch (for the learning-rate schedule and
        the progress bar): its audio at ~5 % padding over the frame budget, or its utterances
        over max_batch_utts, whichever is more; without the shard index, 1000."""
        ds, b = self.dataset, self.batching
        if ds.counts is None:
            return 1000
        mine = ds.rank_shards()
        seconds = sum(ds.index["shards"][i]["duration"] for i in mine)
        frames = seconds * 1000 / ds.cfg.hop_ms * 1.05
        return max(1, math.ceil(frames / b.batch_frames),
                   math.ceil(sum(ds.counts[i] for i in mine) / b.max_batch_utts))

    @property
    def dim(self) -> int:
        return self.dataset.dim

    def cmvn(self):
        return self.dataset.cmvn()

    def set_epoch(self, epoch: int, position: dict | None = None) -> None:
        self.epoch, self.start, self.position = epoch, position, position
        self.dataset.set_epoch(epoch)

    def __iter__(self):
        from asr.data.shard_batches import stream_batches
        b = self.batching
        stream = stream_batches(self.dataset, b.batch_frames, self.epoch,
                                num_workers=b.num_workers, max_batch_utts=b.max_batch_utts,
                                sort_buffer=b.sort_buffer, start=self.start,
                                pin_memory=b.pin_memory)
        self.position = stream.state
        for batch in stream:
            self.position = stream.state
            yield batch


def open_training_data(cfg: Config, vocab, rank: int = 0, world: int = 1,
                       pin_memory: bool = False):
    """(the training split's batches of this rank, its Augmenter or None): ShardStreamBatches
    of data.train_shards, else StoreBatches of data.train_split's store (features computed on
    the fly when features.on_the_fly, or when waveform augmentation needs the audio). With
    features.on_the_fly and on_device the batches hold waveforms (featurised by the trainer)."""
    data, features, tc = cfg.data, cfg.features, cfg.train
    on_device = features.on_the_fly and features.on_device
    batching = Batching.of(tc, rank, world, pin_memory)
    if data.train_shards:  # streamed: no training store on this disk
        from asr.data.shards import ShardDataset
        augment = augmenter_for(cfg.augment, features.sample_rate)
        shards = ShardDataset(
            data.train_shards, vocab, features, index=data.shard_index or None,
            subsample=cfg.model.subsample, max_duration=tc.max_duration,
            shuffle_buffer=tc.shuffle_buffer, seed=tc.seed, rank=rank, world_size=world,
            raw_audio=on_device, augment=augment, name=f"data.train_shards {data.train_shards}")
        return ShardStreamBatches(shards, batching), augment
    store = open_store(data.root, data.train_split, features, on_device,
                       need_audio=cfg.augment.wave_active)
    augment = augmenter_for(cfg.augment, features.sample_rate, store)
    train_set = AsrDataset(store, vocab, cfg.model.subsample, tc.max_duration, "train", augment,
                           tc.seed)
    return StoreBatches(train_set, batching, features.hop_ms), augment
