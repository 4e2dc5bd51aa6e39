"""Manifest -> sharded, memory-mapped feature store with global CMVN statistics.

Layout of a store (one per split)::

    features/<split>/meta.json          feature config + totals (written last: marks completion)
    features/<split>/index.jsonl        one line per utterance: id, shard, offset, frames, text, ...
    features/<split>/shard-00000.npy    float16 (frames, dim), utterances back to back
    features/<split>/shard-00000.jsonl  that shard's index lines + CMVN sums (marks the shard done)
    features/<split>/cmvn.json          mean and std per dimension over the split

Work is split into chunks of utterances, one shard each, processed in parallel and streamed
(memory stays flat in corpus size). A chunk whose shard index exists is skipped on re-runs, so
an interrupted extraction resumes; shard files are renamed into place only when complete.
Unreadable audio is skipped, reported with its file and reason, and counted.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asr.data.audio import AudioError, load_audio
from asr.config import FeatureConfig
from asr.data.features import FeatureExtractor
from asr.data.manifest import read_manifest

log = logging.getLogger(__name__)

_extractor: FeatureExtractor | None = None


def _init_worker(cfg_dict: dict) -> None:
    global _extractor
    torch.set_num_threads(1)  # parallelism comes from the worker processes
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
            wav = load_audio(e["audio_filepath"], _extractor.cfg.sample_rate)
        except AudioError as err:
            errors.append(str(err))
            continue
        f = _extractor(wav).numpy()
        feats.append(f)
        lines.append({"id": e["id"], "shard": k, "offset": offset, "frames": len(f),
                      "duration": round(len(wav) / _extractor.cfg.sample_rate, 3),
                      "text": e.get("text", ""), "speaker": e.get("speaker", ""),
                      "audio_filepath": e["audio_filepath"]})
        offset += len(f)
    mat = np.concatenate(feats) if feats else np.zeros((0, _extractor.dim), np.float32)
    stats = {"sum": mat.sum(0, dtype=np.float64).tolist(),
             "sumsq": np.square(mat, dtype=np.float64).sum(0).tolist(), "count": len(mat)}
    tmp = out / f"shard-{k:05d}.tmp.npy"
    np.save(tmp, mat.astype(np.float16))
    os.replace(tmp, out / f"shard-{k:05d}.npy")
    tmp = out / f"shard-{k:05d}.jsonl.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"stats": stats, "errors": errors}) + "\n")
        for line in lines:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    os.replace(tmp, part)
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
    if settings.exists() and json.loads(settings.read_text())["features"] != wanted:
        raise ValueError(f"{out}: store was built with other feature settings; delete it to rebuild")
    settings.write_text(json.dumps({"features": wanted, "manifest": str(manifest)}))
    total = sum(1 for _ in read_manifest(manifest))
    jobs = _chunks(manifest, chunk_utts, out)
    bar = tqdm(total=total, desc=f"features {out.name}", unit="utt", disable=not progress)
    if nj > 1:
        with mp.get_context("fork").Pool(nj, _init_worker, (wanted,)) as pool:
            for _, n, errors in pool.imap(_process_chunk, jobs):
                _report(bar, n, errors, chunk_utts)
    else:
        _init_worker(wanted)
        for job in jobs:
            _report(bar, *_process_chunk(job)[1:], chunk_utts)
    bar.close()
    return _finish(out, wanted)


def _report(bar, n: int, errors: list[str], chunk_utts: int) -> None:
    for err in errors:
        log.warning("skipped: %s", err)
    bar.update(chunk_utts if n < 0 else n + len(errors))


def _finish(out: Path, feature_cfg: dict) -> dict:
    """Merge the shard indexes into index.jsonl, sum the CMVN statistics, write meta.json."""
    total = None
    n_utts, errors = 0, []
    tmp = out / "index.jsonl.tmp"
    with open(tmp, "w", encoding="utf-8") as index:
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
    os.replace(tmp, out / "index.jsonl")
    if total is None or total[1] == 0:
        raise RuntimeError(f"{out}: no usable utterances ({len(errors)} skipped)")
    (sums, sumsq), count = total
    mean = sums / count
    std = np.sqrt(np.maximum(sumsq / count - mean**2, 1e-8))
    (out / "cmvn.json").write_text(json.dumps({"mean": mean.tolist(), "std": std.tolist(),
                                                "frames": int(count)}))
    meta = {"features": feature_cfg, "utterances": n_utts, "frames": int(count),
            "hours": round(count * feature_cfg["hop_ms"] / 1000 / 3600, 3),
            "skipped": len(errors), "skipped_files": errors[:100]}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    if errors:
        log.warning("%s: %d utterance(s) skipped (unreadable audio); first: %s", out, len(errors), errors[0])
    return meta
