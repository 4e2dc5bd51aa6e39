"""Sharded datasets for corpora beyond one disk: tar shards in the WebDataset layout (written by
asr.data.shard_writer), read as a sequential stream (local paths, ``https://`` or ``pipe:``
URLs) instead of random access.

    write_shards(manifest, out_dir)                  # asr.data.shard_writer, `asr shard`
    ds = ShardDataset(out_dir, vocab, FeatureConfig(), seed=0)   # rank/world from torch.distributed
    ds.set_epoch(epoch, skip=n)                      # items: new shard order + buffer draws; resume
    stream = stream_batches(ds, 20000, epoch, num_workers=2, start=saved_state)
    for batch in stream: ...                         # collated Batches (asr.data.shard_batches)

A training item is what AsrDataset.__getitem__ gives: (features (T, F) float32, label ids, id),
or None for an utterance that cannot be trained on (so `collate` works unchanged).

Splitting an epoch: the shard list is permuted with (seed, epoch); rank r of W takes shards
r, r+W, ...; DataLoader worker k of K of that rank takes every K-th of those. Each shard is read
by exactly one (rank, worker), so every sample of an epoch appears exactly once. This needs
n_shards >= W*K (else some reader would have nothing; refused). Readers get whole shards, so when
the shards do not divide evenly the first n_shards % W ranks read one shard more than the others
(and within a rank, likewise the first workers): the samples per rank differ by up to one shard.
Nothing is dropped or repeated to even them out; a DDP loop must agree when to stop (as
Trainer.done does), or stop every rank at the smallest rank_samples() (an all_reduce MIN). Many
shards of similar size (>= 4*W*K) keep the difference small.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import random
import zlib
from collections import Counter
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from asr.data.audio import AudioError, decode_audio
from asr.data.dataset import AsrDataset
from asr.data.effects import item_generator
from asr.data.features import FeatureExtractor
from asr.data.shard_writer import FEATURE_KEYS, INDEX

log = logging.getLogger(__name__)

_NOT_AUDIO = {"txt", "json", "npy", "__key__", "__url__", "__local_path__"}


def loader_worker() -> tuple[int, int]:
    """(this DataLoader worker's id, the number of workers); (0, 1) in the main process."""
    info = torch.utils.data.get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


def read_index(where) -> dict:
    """shards.json as a dict, from a dict, a local path or a URL webdataset opens (https:, pipe:)."""
    if isinstance(where, dict):
        return where
    from webdataset import gopen
    with gopen(str(where)) as f:
        return json.loads(f.read())


def shard_name(url: str) -> str:
    """The file name a shard URL ends in ("pipe:curl -s https://h/x/shard-000001.tar" ->
    "shard-000001.tar"): how a URL is matched to its entry in shards.json."""
    return url.split()[-1].rsplit("/", 1)[-1]


def split_skip(skip: int, counts: list[int]) -> tuple[list[int], int]:
    """Where the first `skip` items a DataLoader yields come from: (how many of each worker's
    items they hold, the worker whose turn is next).

    A DataLoader over an IterableDataset takes items from its workers in turn (0, 1, ..., K-1,
    0, ...), passing over a worker whose stream has ended; so the first R full rounds hold
    min(count, R) items of each worker, and the rest of `skip` comes from the next workers in
    order that still have items.
    """
    lo, hi = 0, max(counts, default=0)
    while lo < hi:  # the most full rounds R with sum(min(c, R)) <= skip
        mid = (lo + hi + 1) // 2
        if sum(min(c, mid) for c in counts) <= skip:
            lo = mid
        else:
            hi = mid - 1
    taken = [min(c, lo) for c in counts]
    rest, turn = skip - sum(taken), 0
    for k, c in enumerate(counts):
        if rest and c > lo:
            taken[k] += 1
            rest -= 1
            turn = k + 1
    return taken, turn % max(1, len(counts))


class ShardDataset(torch.utils.data.IterableDataset):
    """Training items streamed from tar shards, each sample of an epoch once across ranks and
    DataLoader workers (see the module docstring for the split), in the form of
    AsrDataset.__getitem__: (features (T, F) float32, label ids, id), or None for an utterance
    that cannot be trained on (dropped by AsrDataset's rules, or unreadable audio: logged).

    source: a shard folder (with shards.json), or shard URLs: a list, or one string with
        braces ("pipe:cat /data/shard-{000000..000031}.tar", "https://host/d/shard-{...}.tar").
    index: shards.json (dict, path or URL) for URL sources: sample counts, feature settings and
        CMVN; without it rank_samples() and resuming with several loader workers are unavailable.
    feature_cfg: features computed from audio shards (default: the index's settings); refused
        when it differs from the settings of feature shards.
    subsample, max_duration: as AsrDataset (items CTC cannot learn from are None).
    shuffle_buffer: samples each reader mixes, drawn with (seed, epoch, rank, worker); 0 or 1
        keeps shard order. shuffle_shards: permute the shard list with (seed, epoch).
    rank, world_size: this process's share; default torch.distributed's, else 0 of 1.
    raw_audio: items hold the waveform instead of features (features.on_device).
    augment: an asr.data.augment.Augmenter, drawn per utterance with (seed, epoch, id) as
        AsrDataset does: waveform effects (audio shards only) and SpecAugment (not with raw_audio:
        the trainer masks features made on the device).

    set_epoch(epoch, skip) before iterating (each epoch, as with a sampler); the DataLoader must
    not keep workers between epochs (persistent_workers=False), or they would miss it. Iterated
    through a DataLoader (batch_size=None) it yields items one by one; for training, batch them
    in the workers with asr.data.shard_batches.stream_batches, several times faster with workers.
    """

    def __init__(self, source, vocab, feature_cfg=None, *, index=None, subsample: int = 4,
                 max_duration: float = 0.0, shuffle_buffer: int = 1000, seed: int = 0,
                 shuffle_shards: bool = True, rank: int | None = None,
                 world_size: int | None = None, raw_audio: bool = False, augment=None,
                 name: str = "shards"):
        from asr.config import FeatureConfig
        from braceexpand import braceexpand
        if isinstance(source, (str, Path)) and Path(source).is_dir():
            folder = Path(source)
            self.index = read_index(index if index is not None else folder / INDEX)
            urls = [str(folder / s["name"]) for s in self.index["shards"]]
        else:
            sources = [source] if isinstance(source, (str, Path)) else list(source)
            urls = [u for s in sources for u in braceexpand(str(s))]
            self.index = read_index(index) if index is not None else None
        if not urls:
            raise ValueError(f"{name}: no shards in {source}")
        self.urls = urls
        self.counts = None
        if self.index is not None:
            known = {s["name"]: s["samples"] for s in self.index["shards"]}
            missing = [u for u in urls if shard_name(u) not in known]
            if missing:
                raise ValueError(f"{name}: {missing[0]} is not in the shard index")
            self.counts = [known[shard_name(u)] for u in urls]
        stored = (self.index or {}).get("features")
        if feature_cfg is None:
            feature_cfg = FeatureConfig(**stored) if stored else FeatureConfig()
        kind = (self.index or {}).get("kind")
        if kind == "features" and stored:
            wanted = {k: getattr(feature_cfg, k) for k in FEATURE_KEYS}
            if wanted != stored:
                raise ValueError(f"{name}: shards hold features {stored}, not the {wanted} asked for")
        if kind == "features" and raw_audio:
            raise ValueError(f"{name}: feature shards hold no audio for raw_audio (on-device features)")
        if kind == "features" and augment is not None and augment.cfg.wave_active:
            raise ValueError(f"{name}: waveform augmentation needs audio shards, not shards of features")
        self.cfg, self.extractor = feature_cfg, FeatureExtractor(feature_cfg)
        self.vocab, self.subsample, self.max_duration = vocab, subsample, max_duration
        self.shuffle_buffer, self.seed, self.shuffle_shards = shuffle_buffer, seed, shuffle_shards
        self.raw_audio, self.augment, self.name = raw_audio, augment, name
        if world_size is None:
            import torch.distributed as dist
            on = dist.is_available() and dist.is_initialized()
            rank, world_size = (dist.get_rank(), dist.get_world_size()) if on else (rank or 0, 1)
        self.rank, self.world_size = rank or 0, world_size
        if len(urls) < world_size:
            raise ValueError(f"{name}: {len(urls)} shard(s) for {world_size} ranks: every rank "
                             "needs at least one; write smaller shards")
        self.epoch, self.skip = 0, 0
        self.dropped: Counter = Counter()

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select the epoch (shard order and shuffle draws) and skip the first `skip` items of
        this rank's stream (as the DataLoader yields them), to resume within the epoch."""
        self.epoch, self.skip = epoch, skip

    # -- which shards whose --------------------------------------------------------------------
    def rank_shards(self, epoch: int | None = None) -> list[int]:
        """Indices (into self.urls) of this rank's shards in the epoch, in reading order."""
        order = list(range(len(self.urls)))
        if self.shuffle_shards:
            random.Random(f"shards/{self.seed}/{self.epoch if epoch is None else epoch}").shuffle(order)
        return order[self.rank::self.world_size]

    def worker_counts(self, workers: int) -> list[int]:
        """Samples each of `workers` loader workers of this rank reads this epoch (needs the index)."""
        if self.counts is None:
            raise ValueError(f"{self.name}: sample counts need the shard index (shards.json)")
        mine = self.rank_shards()
        return [sum(self.counts[i] for i in mine[k::workers]) for k in range(workers)]

    def rank_samples(self) -> int:
        """Items this rank yields this epoch (None placeholders included)."""
        return sum(self.worker_counts(1))

    @property
    def dim(self) -> int:
        cmvn = (self.index or {}).get("cmvn")
        return len(cmvn["mean"]) if cmvn else self.extractor.dim

    def cmvn(self) -> tuple[np.ndarray, np.ndarray]:
        """The CMVN statistics stored in the index (for CTCModel.set_cmvn)."""
        stats = (self.index or {}).get("cmvn")
        if not stats:
            raise ValueError(f"{self.name}: no CMVN statistics (give the shard index)")
        return np.array(stats["mean"], np.float32), np.array(stats["std"], np.float32)

    # -- streaming -----------------------------------------------------------------------------
    def __iter__(self) -> Iterator:
        worker, workers = loader_worker()
        if self.skip and workers > 1 and self.counts is None:
            raise ValueError(f"{self.name}: resuming with {workers} loader workers needs the "
                             "shard index (sample counts)")
        # a resumed loader starts its round of workers at worker 0, so worker k reads what worker
        # k + turn read in the uninterrupted epoch: the turns keep their order
        role, skip = worker, self.skip
        if workers > 1:
            taken, turn = split_skip(self.skip, self.worker_counts(workers))
            role = (worker + turn) % workers
            skip = taken[role]
        return self.role_items(role, workers, skip)

    def role_items(self, role: int, workers: int, skip: int = 0) -> Iterator:
        """The items of reader `role` of this rank's `workers` (its shards, shuffled with its
        own seeded buffer), less the first `skip`, which are read but not decoded."""
        import webdataset as wds
        mine = self.rank_shards()
        if len(mine) < workers:
            raise ValueError(f"{self.name}: rank {self.rank} has {len(mine)} shard(s) for "
                             f"{workers} loader workers: every worker needs one; write smaller "
                             "shards or use fewer workers")
        urls = [self.urls[i] for i in mine[role::workers]]
        stages = [lambda: iter([{"url": u} for u in urls]), wds.tarfile_to_samples()]
        if self.shuffle_buffer > 1:
            rng = random.Random(f"buffer/{self.seed}/{self.epoch}/{self.rank}/{role}")
            stages.append(wds.shuffle(self.shuffle_buffer, self.shuffle_buffer, rng=rng))
        stages.append(lambda src: itertools.islice(src, skip, None))  # before any decoding
        stages.append(lambda src: map(self.to_item, src))
        self.dropped = Counter()
        yield from wds.DataPipeline(*stages)
        if self.dropped:
            log.info("%s: rank %d reader %d dropped %s", self.name, self.rank, role,
                     ", ".join(f"{n} {r}" for r, n in self.dropped.items()))

    def to_item(self, sample: dict):
        """A shard sample -> (features, label ids, id), or None (reason counted in dropped)."""
        meta = json.loads(sample["json"])
        uid, text = meta["id"], sample["txt"].decode("utf-8")
        frames = meta.get("frames") or 1 + int(round(meta["duration"] * self.cfg.sample_rate)) // self.extractor.hop
        reason = AsrDataset._reject({"duration": meta["duration"], "text": text, "frames": frames},
                                    self.vocab, self.subsample, self.max_duration)
        if reason:
            self.dropped[reason] += 1
            return None
        try:
            feats = self.features(sample, uid)
        except AudioError as err:
            self.dropped["unreadable audio"] += 1
            log.warning("skipped: %s", err)
            return None
        return torch.from_numpy(feats), torch.tensor(self.vocab.encode(text), dtype=torch.long), uid

    def features(self, sample: dict, uid: str) -> np.ndarray:
        """Features (or the waveform, raw_audio) of a sample: the stored .npy, else computed
        from the audio member."""
        g = item_generator(self.seed, self.epoch, zlib.crc32(uid.encode())) if self.augment else None
        if "npy" in sample:
            if self.raw_audio:
                raise ValueError(f"{sample['__url__']}: feature shards hold no audio for raw_audio")
            feats = torch.from_numpy(np.load(io.BytesIO(sample["npy"]), allow_pickle=False).astype(np.float32))
        else:
            ext = next((k for k in sample if k not in _NOT_AUDIO), None)
            if ext is None:
                raise AudioError(f"{sample['__url__']}: {uid}: the sample has neither audio nor features")
            wav = decode_audio(io.BytesIO(sample[ext]), f"{sample['__url__']}: {uid}.{ext}", self.cfg.sample_rate)
            if self.augment is not None and self.augment.cfg.wave_active:
                wav = self.augment(wav, g)
            if self.raw_audio:
                return wav.numpy()
            feats = self.extractor(wav)
        if self.augment is not None:
            feats = self.augment.spec_augment(feats, g)
        return feats.numpy()
