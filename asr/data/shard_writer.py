"""Writing tar shards (WebDataset layout) from a manifest: the form a corpus takes beyond one disk,
read back as a stream by asr.data.shards.ShardDataset.

    write_shards(manifest, out_dir)                  # or `asr shard MANIFEST OUT_DIR`

Layout of a shard folder::

    shards.json          shard names, sample counts, durations, totals (written last: marks completion)
    shard-000000.tar     per utterance <key>.txt (transcript), <key>.json (id, duration, ...) and
                         either <key>.<ext> (the original audio file's bytes: flac, wav, ...) or
                         <key>.npy (stored features, float16 as the feature store holds them)
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from asr.data.audio import AudioError, entry_audio, flac_bytes
from asr.data.features import FeatureExtractor
from asr.data.manifest import read_manifest
from asr.data.store import FeatureStore
from asr.utils import atomic_write_text

log = logging.getLogger(__name__)

INDEX = "shards.json"
SHARD_NAME = "shard-%06d.tar"
FEATURE_KEYS = ("kind", "sample_rate", "n_mels", "win_ms", "hop_ms")  # what makes features differ


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
