"""Sharded datasets for corpora beyond one disk: tar shards in the WebDataset layout, read as a
sequential stream (local paths, ``https://`` or ``pipe:`` URLs) instead of random access.

    write_shards(manifest, out_dir)                  # or `asr shard MANIFEST OUT_DIR`
    ds = ShardDataset(out_dir, vocab, FeatureConfig(), seed=0)   # rank/world from torch.distributed
    ds.set_epoch(epoch, skip=n)                      # items: new shard order + buffer draws; resume
    stream = stream_batches(ds, 20000, epoch, num_workers=2, start=saved_state)
    for batch in stream: ...                         # collated Batches; stream.state resumes

Layout of a shard folder::

    shards.json          shard names, sample counts, durations, totals (written last: marks completion)
    shard-000000.tar     per utterance <key>.txt (transcript), <key>.json (id, duration, ...) and
                         either <key>.<ext> (the original audio file's bytes: flac, wav, ...) or
                         <key>.npy (stored features, float16 as the feature store holds them)

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

Batches are made inside the DataLoader workers (ShardBatches): an utterance sent alone between
processes costs about as much as its loading (shared memory per tensor), a batch costs the same.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
import random
import zlib
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from asr.data.audio import AudioError, decode_audio, entry_audio, flac_bytes
from asr.data.dataset import AsrDataset, Batch, collate
from asr.data.effects import item_generator
from asr.data.features import FeatureExtractor
from asr.data.manifest import read_manifest
from asr.data.store import FeatureStore
from asr.utils import atomic_write_text

log = logging.getLogger(__name__)

INDEX = "shards.json"
SHARD_NAME = "shard-%06d.tar"
FEATURE_KEYS = ("kind", "sample_rate", "n_mels", "win_ms", "hop_ms")  # what makes features differ
_NOT_AUDIO = {"txt", "json", "npy", "__key__", "__url__", "__local_path__"}


# ---------------------------------------------------------------- writing

class _ShardSink:
    """Writes samples into numbered tar shards, starting a new one at max_count samples or
    max_size bytes; each shard is written under a hidden temporary name and renamed when full."""

    def __init__(self, out: Path, max_count: int, max_size: int):
        import webdataset as wds
        self._tar_writer = wds.TarWriter
        self.out, self.max_count, self.max_size = out, max_count, max_size
        self.shards: list[dict] = []
        self._writer = self._fh = self._tmp = None

    def write(self, sample: dict, duration: float) -> None:
        size = sum(len(v) for k, v in sample.items() if not k.startswith("__"))
        cur = self.shards[-1] if self._writer else None
        if cur and (cur["samples"] >= self.max_count or cur["bytes"] + size > self.max_size):
            self._close()
            cur = None
        if cur is None:
            name = SHARD_NAME % len(self.shards)
            self._tmp = self.out / f".{name}.{os.getpid()}.tmp"
            self._fh = open(self._tmp, "wb")
            # an integer mtime keeps members free of pax headers (a float one adds one each)
            self._writer = self._tar_writer(self._fh, encoder=False, mtime=0)
            cur = {"name": name, "samples": 0, "duration": 0.0, "bytes": 0}
            self.shards.append(cur)
        self._writer.write(sample)
        cur["samples"] += 1
        cur["duration"] += duration
        cur["bytes"] += size

    def _close(self) -> None:
        self._writer.close()
        self._fh.close()
        os.replace(self._tmp, self.out / self.shards[-1]["name"])
        self.shards[-1]["duration"] = round(self.shards[-1]["duration"], 3)
        self._writer = self._fh = self._tmp = None

    def finish(self) -> list[dict]:
        if self._writer:
            self._close()
        return self.shards

    def abort(self) -> None:
        if self._writer:
            self._writer.close()
            self._fh.close()
            self._tmp.unlink(missing_ok=True)


def sample_key(uid: str) -> str:
    """The tar member prefix of an utterance: WebDataset cuts keys at the first dot and treats
    slashes as folders, so both become underscores (the exact id is kept in the .json)."""
    return uid.replace(".", "_").replace("/", "_")


def _meta_json(e: dict, duration: float, frames: int | None = None) -> bytes:
    meta = {"id": e["id"], "duration": duration}
    if frames is not None:
        meta["frames"] = frames
    for key in ("speaker", "audio_filepath", "offset"):
        if e.get(key):
            meta[key] = e[key]
    return json.dumps(meta, ensure_ascii=False).encode("utf-8")


class _AudioSamples:
    """Shard samples holding each readable audio file's bytes unchanged: (sample, duration,
    None), or (None, 0, error naming the file). Each file is decoded once, to check that training
    can use it, to measure its duration and, for the first cmvn_utts, to sum CMVN statistics."""

    def __init__(self, entries: Iterable[dict], cfg, cmvn_utts: int):
        self.entries, self.cfg, self.cmvn_utts = entries, cfg, cmvn_utts
        self.extractor = FeatureExtractor(cfg)
        self._sums, self._frames, self._utts = None, 0, 0

    def __iter__(self):
        for e in self.entries:
            path = Path(e["audio_filepath"])
            try:
                wav = entry_audio(e, self.cfg.sample_rate)
            except AudioError as err:
                yield None, 0.0, str(err)
                continue
            duration = round(len(wav) / self.cfg.sample_rate, 3)
            if self._utts < self.cmvn_utts:
                self._add_stats(self.extractor(wav).double())
            if "offset" in e:  # a segment of a long recording: only its samples, as FLAC
                ext, data = "flac", flac_bytes(wav, self.cfg.sample_rate)
            else:
                ext, data = path.suffix.lower().lstrip(".") or "wav", path.read_bytes()
            yield {"__key__": sample_key(e["id"]), "txt": e.get("text", "").encode("utf-8"),
                   "json": _meta_json(e, duration), ext: data}, duration, None

    def _add_stats(self, feats: torch.Tensor) -> None:
        part = torch.stack([feats.sum(0), feats.square().sum(0)])
        self._sums = part if self._sums is None else self._sums + part
        self._frames += len(feats)
        self._utts += 1

    def cmvn(self) -> dict | None:
        if self._sums is None:
            return None
        mean = self._sums[0] / self._frames
        std = (self._sums[1] / self._frames - mean.square()).clamp_min(1e-8).sqrt()
        return {"mean": mean.float().tolist(), "std": std.float().tolist(),
                "utterances": self._utts, "frames": self._frames}


class _FeatureSamples:
    """Shard samples holding a feature store's features of each manifest entry, in the store's
    dtype (float16): (sample, duration, None), or (None, 0, error) for an id not in the store."""

    def __init__(self, entries: Iterable[dict], store: FeatureStore):
        self.entries, self.store = entries, store
        self.by_id = {e["id"]: j for j, e in enumerate(store.entries)}
        self._mmaps: dict[int, np.ndarray] = {}

    def __iter__(self):
        for e in self.entries:
            j = self.by_id.get(e["id"])
            if j is None:
                yield None, 0.0, (f"{e['id']} ({e.get('audio_filepath', '')}): not in the feature "
                                  f"store {self.store.path} (unreadable when it was extracted?)")
                continue
            s = self.store.entries[j]
            buf = io.BytesIO()
            np.save(buf, self._stored(s))
            yield {"__key__": sample_key(e["id"]), "txt": e.get("text", s["text"]).encode("utf-8"),
                   "json": _meta_json({**s, **e}, s["duration"], s["frames"]),
                   "npy": buf.getvalue()}, s["duration"], None

    def _stored(self, s: dict) -> np.ndarray:
        mat = self._mmaps.get(s["shard"])
        if mat is None:
            mat = np.load(self.store.path / f"shard-{s['shard']:05d}.npy", mmap_mode="r")
            self._mmaps[s["shard"]] = mat
        return np.ascontiguousarray(mat[s["offset"]:s["offset"] + s["frames"]])

    def cmvn(self) -> dict:
        mean, std = self.store.cmvn()
        return {"mean": mean.tolist(), "std": std.tolist()}


def write_shards(manifest: str | Path, out_dir: str | Path, features_store: str | Path | None = None,
                 max_count: int = 1000, max_size: int = 256 * 2**20, shuffle: bool = False,
                 seed: int = 0, feature_cfg=None, cmvn_utts: int = 200) -> dict:
    """Write the utterances of a manifest into tar shards + shards.json; returns the index.

    features_store: a feature store folder: shards hold its stored features (.npy) instead of
        the audio; a manifest entry missing from the store is skipped and counted.
    max_count / max_size: samples and bytes per shard (whichever is reached first).
    shuffle: write in a seeded random order, for manifests sorted by speaker or length (the
        reader's shuffle buffer only mixes nearby samples).
    feature_cfg: the features audio shards are checked and described with (default
        FeatureConfig()); their CMVN statistics come from the first cmvn_utts utterances
        written. Feature store shards copy the store's settings and CMVN.
    Unreadable audio is skipped with a warning naming the file, and counted ("skipped").
    Shards of an earlier run beyond the new count are removed; shards.json is written last.
    """
    from asr.config import FeatureConfig
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / INDEX).unlink(missing_ok=True)  # the folder is incomplete until it is rewritten
    entries: Iterable[dict] = read_manifest(manifest)
    if shuffle:
        entries = list(entries)
        random.Random(seed).shuffle(entries)
    if features_store:
        store = FeatureStore(features_store)
        samples = _FeatureSamples(entries, store)
        settings = {k: store.meta["features"][k] for k in FEATURE_KEYS}
    else:
        cfg = feature_cfg or FeatureConfig()
        samples = _AudioSamples(entries, cfg, cmvn_utts)
        settings = {k: getattr(cfg, k) for k in FEATURE_KEYS}
    sink = _ShardSink(out, max(1, max_count), max(1, max_size))
    errors: list[str] = []
    try:
        for sample, duration, error in samples:
            if error:
                errors.append(error)
                log.warning("skipped: %s", error)
            else:
                sink.write(sample, duration)
    except BaseException:
        sink.abort()
        raise
    shards = sink.finish()
    if not shards:
        raise RuntimeError(f"{manifest}: no usable utterances ({len(errors)} skipped)")
    names = {s["name"] for s in shards}
    for old in out.glob("shard-*.tar"):
        if old.name not in names:
            old.unlink()
    duration = round(sum(s["duration"] for s in shards), 3)
    index = {"kind": "features" if features_store else "audio", "manifest": str(manifest),
             "samples": sum(s["samples"] for s in shards), "duration": duration,
             "hours": round(duration / 3600, 3), "skipped": len(errors),
             "skipped_files": errors[:100], "features": settings, "cmvn": samples.cmvn(),
             "shards": shards}
    atomic_write_text(out / INDEX, json.dumps(index, indent=1))  # last: marks completion
    if errors:
        log.warning("%s: %d utterance(s) skipped; first: %s", out, len(errors), errors[0])
    return index


# ---------------------------------------------------------------- reading

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
    in the workers with stream_batches, which is several times faster with workers.
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


# ---------------------------------------------------------------- batching

def loader_worker() -> tuple[int, int]:
    """(this DataLoader worker's id, the number of workers); (0, 1) in the main process."""
    info = torch.utils.data.get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


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
