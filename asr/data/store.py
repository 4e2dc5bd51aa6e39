"""The feature store: written from a manifest (``extract_features``, ``asr features``) and read for
training and decoding (``FeatureStore``; ``OnTheFlyStore`` computes the same from the audio).

Layout of a store (one per split)::

    features/<split>/meta.json          feature config + totals (written last: marks completion)
    features/<split>/index.jsonl        one line per utterance: id, shard, offset, frames, text, ...
    features/<split>/shard-00000.npy    float16 (frames, dim), utterances back to back
    features/<split>/shard-00000.jsonl  that shard's index lines + CMVN sums (marks the shard done)
    features/<split>/cmvn.json          mean and std per dimension over the split
    features/<split>/settings.json      feature settings + the manifest's SHA-256 it was built from

Work is split into chunks of utterances, one shard each, processed in parallel and streamed
(memory stays flat in corpus size). A chunk whose shard index exists is skipped on re-runs, so
an interrupted extraction resumes; shard files are renamed into place only when complete.
A store whose manifest has changed since (data prepared again with other hours or subsets) is
rebuilt by ``extract_features`` and refused by ``open_store``, never read as if current.
Unreadable audio is skipped, reported with its file and reason, and counted.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asr.config import FeatureConfig
from asr.data.audio import AudioError, entry_audio
from asr.data.features import FeatureExtractor
from asr.data.manifest import read_manifest
from asr.utils import WorkerPool, atomic_open, atomic_path, atomic_write_text, file_sha256

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- reading

class FeatureStore:
    """Read-only view of a feature store written by extract_features (shards read with pread)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        meta = self.path / "meta.json"
        if not meta.exists():
            raise FileNotFoundError(f"{self.path}: no complete feature store (meta.json missing); "
                                    "run `asr features` first")
        self.meta = json.loads(meta.read_text())
        with open(self.path / "index.jsonl", encoding="utf-8") as f:
            self.entries = [json.loads(line) for line in f]
        self._shards: dict[int, tuple[int, int, np.dtype, int]] = {}  # fd, data offset, dtype, dim

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def dim(self) -> int:
        f = self.meta["features"]
        return f["n_mels"] if f["kind"] == "fbank" else len(self.cmvn()[0])

    def features(self, i: int) -> np.ndarray:
        """Utterance i's (frames, dim) float32 features, read from its shard with pread: read,
        not memory-mapped, so that the pages of a store read through in an epoch stay in the
        page cache and do not count as the trainer's resident memory."""
        e = self.entries[i]
        shard = self._shards.get(e["shard"])
        if shard is None:
            path = self.path / f"shard-{e['shard']:05d}.npy"
            header = np.load(path, mmap_mode="r")  # the .npy header: data offset, dtype, shape
            shard = (os.open(path, os.O_RDONLY), header.offset, header.dtype, header.shape[1])
            del header
            self._shards[e["shard"]] = shard
        fd, start, dtype, dim = shard
        row = dim * dtype.itemsize
        data = os.pread(fd, e["frames"] * row, start + e["offset"] * row)
        if len(data) != e["frames"] * row:
            raise OSError(f"{self.path}: shard {e['shard']} is truncated at utterance {e['id']}")
        return np.frombuffer(data, dtype).reshape(e["frames"], dim).astype(np.float32)

    def __getstate__(self) -> dict:  # a spawned loader worker opens its own descriptors
        return {**self.__dict__, "_shards": {}}

    def __del__(self):
        for fd, *_ in getattr(self, "_shards", {}).values():
            os.close(fd)

    def cmvn(self) -> tuple[np.ndarray, np.ndarray]:
        stats = json.loads((self.path / "cmvn.json").read_text())
        return np.array(stats["mean"], np.float32), np.array(stats["std"], np.float32)


class OnTheFlyStore:
    """The FeatureStore interface over a manifest, computing features from the audio when asked
    (in DataLoader workers), for corpora too large to store features for.

    Frames are estimated from manifest durations for batching; CMVN statistics come from a
    seeded sample of `cmvn_utts` utterances. Unreadable audio raises AudioError naming the file.
    """

    def __init__(self, manifest: str | Path, cfg, cmvn_utts: int = 200, seed: int = 0,
                 raw_audio: bool = False):
        self.path = Path(manifest)
        self.extractor = FeatureExtractor(cfg)
        hop = self.extractor.hop
        self.entries = []
        for e in read_manifest(manifest):
            samples = int(round(float(e.get("duration", 0.0)) * cfg.sample_rate))
            self.entries.append({"id": e["id"], "audio_filepath": e["audio_filepath"],
                                 "duration": float(e.get("duration", 0.0)), "text": e.get("text", ""),
                                 "speaker": e.get("speaker", ""), "frames": 1 + samples // hop,
                                 **({"offset": float(e["offset"])} if "offset" in e else {})})
        self.dim = self.extractor.dim
        self.cmvn_utts, self.seed = cmvn_utts, seed
        self.raw_audio = raw_audio  # features(i) returns the waveform (features made on device)
        self._cmvn = None

    def __len__(self) -> int:
        return len(self.entries)

    def features(self, i: int) -> np.ndarray:
        return self.featurize(self.audio(i))

    def featurize(self, wav: torch.Tensor) -> np.ndarray:
        """What features(i) returns for a waveform (e.g. an augmented one)."""
        return wav.numpy() if self.raw_audio else self.extractor(wav).numpy()

    def audio(self, i: int) -> torch.Tensor:
        return entry_audio(self.entries[i], self.extractor.cfg.sample_rate)

    def cmvn(self) -> tuple[np.ndarray, np.ndarray]:
        if self._cmvn is None:
            g = torch.Generator().manual_seed(self.seed)
            picks = torch.randperm(len(self), generator=g)[:self.cmvn_utts].tolist()
            feats = []
            for i in picks:
                try:
                    feats.append(self.extractor(self.audio(i)).numpy())
                except AudioError:
                    pass  # reported when the training loop meets it
            allf = np.concatenate(feats)
            self._cmvn = allf.mean(0).astype(np.float32), np.maximum(allf.std(0), 1e-4).astype(np.float32)
        return self._cmvn


def open_store(root: str | Path, split: str, feature_cfg, raw_audio: bool = False,
               need_audio: bool = False):
    """The split's feature store, or features computed from its manifest when
    features.on_the_fly or need_audio (waveform augmentation) is set, or no store was built."""
    on_the_fly = feature_cfg.on_the_fly or need_audio
    store_dir = Path(root) / "features" / split
    manifest = Path(root) / "manifests" / f"{split}.jsonl"
    if not on_the_fly and (store_dir / "meta.json").exists():
        check_current(store_dir, manifest)
        return FeatureStore(store_dir)
    if not Path(root).is_dir():
        raise FileNotFoundError(f"{root}: no such data folder (data.root): prepare the data "
                                "first (`make data`, asr prepare) or set data.root")
    if on_the_fly or manifest.exists():
        if not manifest.exists():
            raise FileNotFoundError(f"{manifest}: no manifest for split {split!r}")
        return OnTheFlyStore(manifest, feature_cfg, raw_audio=raw_audio)
    return FeatureStore(store_dir)  # raises with the hint to run `asr features`


def check_current(store_dir: Path, manifest: Path) -> None:
    """ValueError when the manifest differs from the one the store was built from (stores of
    versions without the record pass)."""
    settings = store_dir / "settings.json"
    built = json.loads(settings.read_text()).get("sha256") if settings.is_file() else None
    if built and manifest.is_file() and file_sha256(manifest) != built:
        raise ValueError(f"{store_dir}: stale: {manifest} has changed since these features were "
                         "extracted from it; rebuild them with `asr features --config ...` "
                         "(make features)")


# ---------------------------------------------------------------- writing

_extractor: FeatureExtractor | None = None


def _init_worker(cfg_dict: dict) -> None:
    global _extractor
    _extractor = FeatureExtractor(FeatureConfig(**cfg_dict))  # cfg_dict lacks on_the_fly: default


def _process_chunk(job: tuple[int, list[dict], str]) -> tuple[int, int, list[str]]:
    """Extract one chunk into shard-<k>.npy + shard-<k>.jsonl; returns (k, utterances, errors)."""
    k, entries, out_dir = job
    out = Path(out_dir)
    part = out / f"shard-{k:05d}.jsonl"
    if part.exists():
        return k, -1, []
    feats, lines, errors = [], [], []
    offset = 0
    for e in entries:
        try:
            wav = entry_audio(e, _extractor.cfg.sample_rate)
        except AudioError as err:
            errors.append(str(err))
            continue
        f = _extractor(wav).numpy()
        feats.append(f)
        lines.append({"id": e["id"], "shard": k, "offset": offset, "frames": len(f),
                      "duration": round(len(wav) / _extractor.cfg.sample_rate, 3),
                      "text": e.get("text", ""), "speaker": e.get("speaker", ""),
                      "audio_filepath": e["audio_filepath"],
                      **({"audio_offset": e["offset"]} if "offset" in e else {})})
        offset += len(f)
    mat = np.concatenate(feats) if feats else np.zeros((0, _extractor.dim), np.float32)
    stats = {"sum": mat.sum(0, dtype=np.float64).tolist(),
             "sumsq": np.square(mat, dtype=np.float64).sum(0).tolist(), "count": len(mat)}
    with atomic_path(out / f"shard-{k:05d}.npy", suffix=".npy", fsync=False) as tmp:
        np.save(tmp, mat.astype(np.float16))
    with atomic_open(part, fsync=False) as fh:  # written last: marks the shard done
        fh.write(json.dumps({"stats": stats, "errors": errors}) + "\n")
        for line in lines:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    return k, len(lines), errors


def _chunks(manifest: Path, size: int, out_dir: Path):
    it = read_manifest(manifest)
    for k in itertools.count():
        entries = list(itertools.islice(it, size))
        if not entries:
            return
        yield k, entries, str(out_dir)


def extract_features(manifest: str | Path, out_dir: str | Path, cfg: FeatureConfig,
                     nj: int = 2, chunk_utts: int = 400, progress: bool = True) -> dict:
    """Build (or finish building) the feature store for one manifest; returns its meta dict.

    manifest: JSONL manifest of the split. out_dir: the store folder (created).
    cfg: feature settings; a store made with other settings is refused rather than mixed.
    nj: worker processes. chunk_utts: utterances per shard.
    """
    manifest, out = Path(manifest), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wanted = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "on_the_fly"}
    settings = out / "settings.json"
    built = json.loads(settings.read_text()) if settings.exists() else None
    if built and built["features"] != wanted:
        raise ValueError(f"{out}: store was built with other feature settings; delete it to rebuild")
    # the shards on disk belong to this manifest's chunks: any change to it (hours, subsets,
    # channel_share, ...) or to the chunk size starts the store afresh
    source = {"sha256": file_sha256(manifest), "chunk_utts": chunk_utts}
    if built and any(built.get(k) != v for k, v in source.items()) and clear_store(out):
        log.warning("%s: %s is not the manifest this store was built from: rebuilt from scratch",
                    out, manifest)
    atomic_write_text(settings, json.dumps({"features": wanted, "manifest": str(manifest), **source}))
    total = sum(1 for _ in read_manifest(manifest))
    jobs = _chunks(manifest, chunk_utts, out)
    bar = tqdm(total=total, desc=f"features {out.name}", unit="utt", disable=not progress)
    with WorkerPool(nj, _init_worker, (wanted,)) as workers:
        for _, n, errors in workers.imap(_process_chunk, jobs):
            _report(bar, n, errors, chunk_utts)
    bar.close()
    return _finish(out, wanted)


def clear_store(out: Path) -> int:
    """Delete a store's extracted files (meta.json first: the store is incomplete from then on);
    how many there were."""
    files = [out / "meta.json"] + sorted(out.glob("shard-*")) + [out / "index.jsonl", out / "cmvn.json"]
    files = [f for f in files if f.exists()]
    for f in files:
        f.unlink()
    return len(files)


def _report(bar, n: int, errors: list[str], chunk_utts: int) -> None:
    for err in errors:
        log.warning("skipped: %s", err)
    bar.update(chunk_utts if n < 0 else n + len(errors))


def _finish(out: Path, feature_cfg: dict) -> dict:
    """Merge the shard indexes into index.jsonl, sum the CMVN statistics, write meta.json."""
    total = None
    n_utts, errors = 0, []
    with atomic_open(out / "index.jsonl") as index:
        for part in sorted(out.glob("shard-*.jsonl")):
            with open(part, encoding="utf-8") as fh:
                head = json.loads(fh.readline())
                s = head["stats"]
                chunk = np.array([s["sum"], s["sumsq"]]), s["count"]
                total = chunk if total is None else (total[0] + chunk[0], total[1] + chunk[1])
                errors += head["errors"]
                for line in fh:
                    index.write(line)
                    n_utts += 1
    if total is None or total[1] == 0:
        raise RuntimeError(f"{out}: no usable utterances ({len(errors)} skipped)")
    (sums, sumsq), count = total
    mean = sums / count
    std = np.sqrt(np.maximum(sumsq / count - mean**2, 1e-8))
    atomic_write_text(out / "cmvn.json", json.dumps({"mean": mean.tolist(), "std": std.tolist(),
                                                     "frames": int(count)}))
    meta = {"features": feature_cfg, "utterances": n_utts, "frames": int(count),
            "hours": round(count * feature_cfg["hop_ms"] / 1000 / 3600, 3),
            "skipped": len(errors), "skipped_files": errors[:100]}
    atomic_write_text(out / "meta.json", json.dumps(meta, indent=1))  # last: marks completion
    if errors:
        log.warning("%s: %d utterance(s) skipped (unreadable audio); first: %s", out, len(errors), errors[0])
    return meta
