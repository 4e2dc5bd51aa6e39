"""Bucketed training batches streamed from a ShardDataset (asr.data.shards), with an exact
resume point.

    stream = stream_batches(ds, 20000, epoch, num_workers=2, start=saved_state)
    for batch in stream: ...                         # collated Batches; stream.state resumes

Batches are made inside the DataLoader workers (ShardBatches): an utterance sent alone between
processes costs about as much as its loading (shared memory per tensor), a batch costs the same.
"""

from __future__ import annotations

import itertools
import random
from typing import Callable, Iterable, Iterator

import torch

from asr.data.dataset import Batch, collate
from asr.data.shards import ShardDataset, loader_worker


def bucket_batches(items: Iterable, batch_frames: int, max_batch_utts: int = 64,
                   sort_buffer: int = 256, rng: random.Random | None = None,
                   length: Callable | None = None) -> Iterator[list]:
    """Length-bucketed lists of items from a stream, under a padded-frames budget.

    The stream is read in chunks of sort_buffer items (None placeholders are dropped); each
    chunk is sorted by length and cut greedily into batches of at most batch_frames padded
    frames and max_batch_utts items, which come in an order drawn from rng (chunk order when
    None). A chunk's batches depend only on its items: the same stream gives the same batches.
    length: an item's frames (default len(features)); for waveforms give samples // hop.
    """
    length = length or (lambda item: len(item[0]))
    stream = iter(items)
    while True:
        chunk = list(itertools.islice(stream, max(1, sort_buffer)))
        if not chunk:
            return
        kept = sorted((it for it in chunk if it is not None), key=length)  # stable: ties in order
        batches: list[list] = []
        batch: list = []
        longest = 0
        for it in kept:
            n = length(it)
            if batch and (max(longest, n) * (len(batch) + 1) > batch_frames
                          or len(batch) >= max_batch_utts):
                batches.append(batch)
                batch, longest = [], 0
            batch.append(it)
            longest = max(longest, n)
        if batch:
            batches.append(batch)
        if rng is not None:
            rng.shuffle(batches)
        yield from batches


class ShardBatches(torch.utils.data.IterableDataset):
    """Collated batches (asr.data.dataset.Batch) of a ShardDataset, made in each DataLoader
    worker from its own stream (bucket_batches), so a batch crosses to the training process as
    a few tensors instead of two per utterance. Yields (reader role, Batch).

    Resuming is per reader: set_epoch(epoch, start) with start = {"turn": the reader whose turn
    was next, "batches": batches taken from each reader} (what BatchStream.state holds); worker
    k then plays reader (k + turn) and drops its first batches[role] batches, so the loader gives
    exactly the rest of the epoch. It needs the same number of loader workers as before.
    """

    def __init__(self, dataset: ShardDataset, batch_frames: int, max_batch_utts: int = 64,
                 sort_buffer: int = 256, length: Callable | None = None):
        self.dataset, self.batch_frames, self.max_batch_utts = dataset, batch_frames, max_batch_utts
        self.sort_buffer, self.length = sort_buffer, length
        self.start: dict = {"turn": 0, "batches": []}

    def set_epoch(self, epoch: int, start: dict | None = None) -> None:
        self.dataset.set_epoch(epoch)
        self.start = dict(start or {"turn": 0, "batches": []})

    def __iter__(self) -> Iterator[tuple[int, Batch]]:
        worker, workers = loader_worker()
        done = self.start["batches"] or [0] * workers
        if len(done) != workers:
            raise ValueError(f"{self.dataset.name}: the batches were read with {len(done)} loader "
                             f"worker(s); resume with as many, not {workers}")
        role = (worker + self.start["turn"]) % workers
        ds = self.dataset
        rng = random.Random(f"batches/{ds.seed}/{ds.epoch}/{ds.rank}/{role}")
        batches = bucket_batches(ds.role_items(role, workers), self.batch_frames,
                                 self.max_batch_utts, self.sort_buffer, rng, self.length)
        for batch in itertools.islice(batches, done[role], None):
            yield role, collate(batch)


class BatchStream:
    """The training process's side of a ShardBatches loader: yields its Batches and keeps
    `state`, the exact resume point after the batches given so far (a small JSON-able dict)."""

    def __init__(self, loader, workers: int, start: dict | None = None):
        self.loader = loader
        start = start or {}
        self.state = {"turn": start.get("turn", 0),
                      "batches": list(start.get("batches") or [0] * max(1, workers))}

    def __iter__(self) -> Iterator[Batch]:
        for role, batch in self.loader:
            done = list(self.state["batches"])
            done[role] += 1
            self.state = {"turn": (role + 1) % len(done), "batches": done}
            yield batch


def stream_batches(dataset: ShardDataset, batch_frames: int, epoch: int = 0, *,
                   num_workers: int = 0, max_batch_utts: int = 64, sort_buffer: int = 256,
                   start: dict | None = None, pin_memory: bool = False,
                   length: Callable | None = None) -> BatchStream:
    """One epoch of bucketed batches of a ShardDataset through a DataLoader of num_workers
    processes, resumed at `start` (an earlier BatchStream.state of this epoch)."""
    batches = ShardBatches(dataset, batch_frames, max_batch_utts, sort_buffer, length)
    batches.set_epoch(epoch, start)
    loader = torch.utils.data.DataLoader(
        batches, batch_size=None, num_workers=num_workers, pin_memory=pin_memory,
        generator=torch.Generator())  # own generator: the global RNG is left alone
    return BatchStream(loader, num_workers, start)
