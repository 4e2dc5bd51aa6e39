"""Speed-perturbed copies of the built-in mixture's real training speech (builtin.real_speed_factors,
step 4 of data_prep/mixture.py): one copy per factor of every real training utterance, resampled
(Kaldi's speed perturbation: tempo, pitch and formants move together: new voices of the same
lines), id "<id>-sp0.9", speaker "<speaker>-sp0.9", written once to
<root>/audio/speed/<id>-sp0.9.flac; copies whose source left the training part are deleted.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from asr.data import effects as A
from asr.data.audio import SAMPLE_RATE, AudioError, entry_audio, flac_bytes
from asr.utils import WorkerPool, atomic_open

log = logging.getLogger(__name__)

SPEED_DIR = "speed"  # <root>/audio/speed/: the copies, and nothing else


def speed_suffix(factor: float) -> str:
    """The id and speaker suffix of a copy at factor: 0.9 -> "-sp0.9"."""
    return f"-sp{factor:g}"


def plan_speed_copies(entries: list[dict], factors: list[float], out_dir: Path,
                      mdir: Path) -> list[tuple[dict, dict]]:
    """(source entry, copy entry) for every entry and factor; the copy's audio is
    out_dir/<copy id>.flac (relative to mdir) and its duration is filled in when it is made."""
    plan = []
    for factor in factors:
        suffix = speed_suffix(factor)
        for e in entries:
            uid = e["id"] + suffix
            copy_ = dict(e, id=uid, speaker=e["speaker"] + suffix, speed=factor, duration=None,
                         audio_filepath=os.path.relpath(out_dir / f"{uid}.flac", mdir))
            copy_.pop("offset", None)  # the copy is a whole file
            plan.append((e, copy_))
    return plan


def _speed_copy(job: tuple[dict, str, float]) -> tuple[str, float | None, str | None]:
    """(source entry with an absolute path, target flac, factor) -> (target, duration, error);
    an existing target is kept (written atomically, so it is whole)."""
    entry, target, factor = job
    if not os.path.exists(target):
        try:
            wav = entry_audio(entry, SAMPLE_RATE)
        except AudioError as e:
            return target, None, str(e)
        with atomic_open(target, "wb", fsync=False) as f:
            f.write(flac_bytes(A.speed_perturb(wav, factor), SAMPLE_RATE))
    info = sf.info(target)
    return target, info.frames / info.samplerate, None


def _remove_stale_copies(out_dir: Path, keep: set[str]) -> int:
    """Delete the copies not in keep (their source left the training part, or the factors
    changed) and the temporary files of a killed run; returns how many copies went."""
    for tmp in out_dir.glob(".*.tmp"):
        tmp.unlink()
    stale = [p for p in out_dir.glob("*.flac") if p.name not in keep]
    for p in stale:
        p.unlink()
    return len(stale)


def make_speed_copies(entries: list[dict], factors: list[float], mdir: Path, nj: int,
                      progress: bool) -> tuple[list[dict], Counter]:
    """The speed copies of entries (real training utterances, audio paths relative to mdir),
    made in <root>/audio/speed/ where missing; returns the copies' entries and the count
    skipped (unreadable source audio). Copies of anything else are deleted."""
    out_dir = mdir.parent / "audio" / SPEED_DIR
    if not factors and not out_dir.exists():
        return [], Counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_speed_copies(entries, factors, out_dir, mdir)
    removed = _remove_stale_copies(out_dir, {Path(c["audio_filepath"]).name for _, c in plan})
    by_target = {str(mdir / c["audio_filepath"]): c for _, c in plan}
    reused = sum(os.path.exists(target) for target in by_target)
    jobs = [(dict(source, audio_filepath=str(mdir / source["audio_filepath"])),
             str(mdir / copy_["audio_filepath"]), copy_["speed"]) for source, copy_ in plan]
    failed: Counter = Counter()
    with WorkerPool(nj) as workers, \
            tqdm(total=len(jobs), desc="speed copies", unit="utt", disable=not progress) as bar:
        for target, duration, error in workers.imap(_speed_copy, jobs, ordered=False, chunksize=16):
            bar.update()
            if error is None:
                by_target[target]["duration"] = round(duration, 3)
            else:
                log.warning("speed copy skipped: %s", error)
                failed["unreadable source audio (speed copy)"] += 1
    copies = [c for _, c in plan if c["duration"] is not None]
    log.info("speed copies: %d (%d reused, %d made, %d stale deleted, %d skipped)", len(copies),
             reused, len(copies) - reused, removed, sum(failed.values()))
    return copies, failed
