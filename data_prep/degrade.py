"""Degraded copies of a test split: the same sentences through noise, a room or a telephone line.

    python -m data_prep.degrade --root data/builtin --split test --conditions noise10 noise0 reverb telephone
    (or data.degraded: [noise10, noise0, reverb, telephone] in a recipe: `asr prepare` makes them
    from data.degrade_from; builtin.real_degraded: [telephone] makes test_real_telephone from the
    built-in mixture's test_real, see data_prep/mixture.py)

Each condition writes audio/<split>_<condition>/<id>.wav and manifests/<split>_<condition>.jsonl
(same ids, texts and speakers as the source split). Conditions:

    noise10, noise0   additive noise at exactly 10 / 0 dB SNR over the utterance; the noise type is
                      drawn per utterance from white, pink (1/f) and babble (3-7 other utterances
                      of the same split talking at once)
    reverb            a synthetic room impulse response, RT60 0.3-0.9 s, direct-to-reverberant
                      ratio 0-6 dB
    telephone         300-3400 Hz band, 8 kHz sampling, 8-bit mu-law, back at the source rate

Every draw comes from a generator seeded by (seed, condition, utterance index), so the sets are
the same on every machine and re-running skips files that exist (resumable). A clip that would
exceed full scale is scaled down as a whole (the SNR is unchanged). Unreadable source audio is
skipped, named and counted; files of utterances no longer in the source split are deleted.
"""

from __future__ import annotations

import argparse
import logging
import os
import zlib
from pathlib import Path

import soundfile as sf
import torch
from tqdm import tqdm

from asr.config import Degradation, choices
from asr.data import effects as A
from asr.data.audio import AudioError, entry_audio, load_audio, write_wav
from asr.data.manifest import read_manifest, write_manifest
from asr.utils import WorkerPool

log = logging.getLogger(__name__)

CONDITIONS = choices(Degradation)  # one definition: the data.degraded choices
SAMPLE_RATE = 16000

_sources: list[str] = []  # the source split's audio paths (babble talkers), per worker


def _condition_seed(seed: int, condition: str) -> int:
    return seed * 1000 + zlib.crc32(condition.encode()) % 1000


def _babble(generator: torch.Generator, index: int) -> A.BabbleSource:
    """Talkers drawn from the other utterances of the split (never the utterance itself)."""
    def draw(g: torch.Generator) -> torch.Tensor:
        pick = A.randint(g, 0, len(_sources) - 2) if len(_sources) > 1 else 0
        pick += pick >= index and len(_sources) > 1
        try:
            return load_audio(_sources[pick], SAMPLE_RATE)
        except AudioError:
            return torch.zeros(0)
    return draw


def degrade(wav: torch.Tensor, condition: str, generator: torch.Generator,
            babble: A.BabbleSource | None = None, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """wav (samples,) under condition (see the module docstring); draws from generator.
    babble: talkers for babble noise (without one, noise is white or pink only)."""
    if condition in ("noise10", "noise0"):
        kinds = ["white", "pink"] + (["babble"] if babble is not None else [])
        noise = A.random_noise(wav.shape[-1], generator, kinds, babble)
        out = A.add_noise(wav, noise, 10.0 if condition == "noise10" else 0.0)
    elif condition == "reverb":
        rir = A.synthetic_rir(A.uniform(generator, 0.3, 0.9), sample_rate, generator,
                              A.uniform(generator, 0.0, 6.0))
        out = A.reverberate(wav, rir)
    elif condition == "telephone":
        out = A.telephone(wav, sample_rate, mu_law=True)
    else:
        raise ValueError(f"unknown condition {condition!r} (known: {', '.join(CONDITIONS)})")
    peak = out.abs().max()
    return out * (0.99 / peak) if peak > 0.99 else out


def _init_worker(sources: list[str]) -> None:
    global _sources
    _sources = sources


def _one(job: tuple[int, dict, str, int, str]) -> tuple[int, float | None, str | None]:
    """Degrade one utterance into out_path (skipped when it exists); (index, duration, error)."""
    index, entry, condition, seed, out_path = job
    out = Path(out_path)
    try:
        if not out.exists():
            g = A.item_generator(_condition_seed(seed, condition), 0, index)
            wav = entry_audio(entry, SAMPLE_RATE)
            write_wav(out, degrade(wav, condition, g, _babble(g, index)), SAMPLE_RATE)
        info = sf.info(str(out))
        return index, info.frames / info.samplerate, None
    except (AudioError, RuntimeError, ValueError) as e:
        return index, None, str(e)


def make_degraded(root: str | Path, split: str, condition: str, seed: int = 0, nj: int = 2,
                  progress: bool = True) -> Path:
    """Write the <split>_<condition> split of the corpus at root; returns its manifest path.

    root: corpus folder (manifests/<split>.jsonl must exist). condition: one of CONDITIONS.
    seed: fixes every draw. nj: worker processes. progress: a progress bar on stderr.
    """
    if condition not in CONDITIONS:
        raise ValueError(f"unknown degradation {condition!r} (known: {', '.join(CONDITIONS)})")
    root = Path(root)
    source = root / "manifests" / f"{split}.jsonl"
    if not source.exists():
        raise FileNotFoundError(f"{source}: no manifest to degrade")
    entries = list(read_manifest(source))
    name = f"{split}_{condition}"
    audio_dir = root / "audio" / name
    audio_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale(audio_dir, {f"{e['id']}.wav" for e in entries})
    jobs = [(i, e, condition, seed, str(audio_dir / f"{e['id']}.wav")) for i, e in enumerate(entries)]
    results: dict[int, float] = {}
    errors: list[str] = []
    sources = [e["audio_filepath"] for e in entries]
    # spawn: fresh workers, not forks of a parent whose torch threads are running
    with WorkerPool(nj, _init_worker, (sources,), start="spawn") as workers:
        for index, duration, err in tqdm(workers.imap(_one, jobs, ordered=False, chunksize=8),
                                         total=len(jobs), desc=name, disable=not progress):
            if err is None:
                results[index] = duration
            else:
                errors.append(err)
    for err in errors:
        log.warning("skipped: %s", err)
    mdir = root / "manifests"
    path = mdir / f"{name}.jsonl"
    write_manifest(path, ({**{k: v for k, v in entries[i].items() if k not in ("audio_filepath", "offset")},
                           "audio_filepath": os.path.relpath(audio_dir / f"{entries[i]['id']}.wav", mdir),
                           "duration": round(results[i], 3)}
                          for i in range(len(entries)) if i in results))
    log.info("%s: %d utterances, %.3f h, %d skipped", name, len(results),
             sum(results.values()) / 3600, len(errors))
    return path


def _remove_stale(audio_dir: Path, keep: set[str]) -> None:
    """Delete the files of utterances that left the source split (held-out speakers drawn
    anew) and the temporary files of a killed run: the folder holds the split and nothing else."""
    for path in audio_dir.iterdir():
        if path.name not in keep and path.suffix in (".wav", ".tmp"):
            path.unlink()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, help="corpus folder (with manifests/)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nj", type=int, default=2)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for c in a.conditions:
        make_degraded(a.root, a.split, c, a.seed, a.nj)


if __name__ == "__main__":
    main()
