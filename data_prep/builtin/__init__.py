"""Built-in offline English corpus: text from Debian packages spoken by Debian TTS engines.

No public speech corpus can be downloaded here, so this package makes one:

* Sentences come from fortunes (/usr/share/games/fortunes), the WordNet example sentences
  (/usr/share/wordnet/data.*) and, when its ``bible`` program is installed, the King James
  Bible. They are normalised (asr.text.normalize.normalize_text), filtered, deduplicated,
  shuffled with the seed and cut into DISJOINT pools: dev and test sentences never occur in
  train.
* Voices: espeak-ng accents x variants, flite voices, festival voices, and pseudo-speakers of
  SVOX Pico (en-US, en-GB; py-nanotts, in process) and Piper (the neural "joe" voice; run as
  its own process, never imported): each pseudo-speaker is an engine voice with a fixed
  vocal-tract warp and f0 shift (synthesis.perturb). Each utterance has its own seeded rate or
  tempo / pitch / gain; the engines' shares are voices.ENGINE_WEIGHTS unless engine_weights
  says otherwise. One whole voice (HELDOUT_VOICE) is kept out of train/dev/test and speaks the
  test sentences as the ``test_unseen_voice`` split.
* The plan (id, sentence, voice, parameters) depends only on the seed, the engine weights and
  the requested hours, and utterance i of a split is the same whatever the hours, so a larger
  corpus extends a smaller one. Existing wavs are kept (runs resume); every file is written
  atomically. (Piper samples noise inside its model, so its audio differs slightly between
  runs; its plan does not.)

Layout::

    out_dir/audio/<split>/<id>.wav         16 kHz mono 16-bit
    out_dir/manifests/<split>.jsonl        id, audio_filepath (relative), duration, text, speaker
    out_dir/manifests/train_text.txt       every train-pool sentence (language-model text)
    out_dir/manifests/synthetic_text.txt   the same, kept as written: the mixture with real
                                           speech rewrites train_text.txt (data_prep/mixture.py)

The text handed to the synthesisers is the normalised transcript itself, so what is spoken is
what the label says (numbers are spelled out before the engine sees them).

Modules: text (sentence sources, cleaning, pools), voices (voice inventory, per-utterance
parameters, the plan), synthesis (running the engines over worker processes); this one holds
the driver prepare_builtin, the tool check, the manifests and the command line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from asr.data.manifest import write_manifest
from asr.utils import atomic_write_text
from data_prep.builtin.synthesis import SAMPLE_RATE, piper_cmd, synthesise
from data_prep.builtin.text import (FORTUNE_DIR, WORDNET_DIR, clean_sentence, collect_sentences,
                                    split_pools)
from data_prep.builtin.voices import (FESTIVAL_VOICES, HELDOUT_VOICE, PIPER_VOICES, engine_shares,
                                      plan_corpus, plan_split, voice_names)

__all__ = ["prepare_builtin", "check_tools", "main", "SPLITS", "SAMPLE_RATE", "HELDOUT_VOICE",
           "clean_sentence", "collect_sentences", "split_pools", "voice_names", "plan_split",
           "plan_corpus", "engine_shares"]

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test", "test_unseen_voice")
APT_HINT = ("sudo apt-get install espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k "
            "festvox-us-slt-hts sox fortunes wordnet-base")
PIP_HINT = "pip install -r requirements/lock.txt"
FESTIVAL_VOICE_DIR = Path("/usr/share/festival/voices")
# Bump when the plan for a given seed changes (text.py sentences or pools, voices.py voices or
# parameters), so old audio is not mixed in.
PLAN_VERSION = 2


def _missing_debian(engines: set[str]) -> list[str]:
    """Missing Debian pieces: the engines' programs, festival's voices, the text packages."""
    programs = {"espeak": "espeak-ng", "flite": "flite", "festival": "festival"}
    missing = [programs[e] for e in sorted(engines & set(programs))
               if shutil.which(programs[e]) is None]
    if "festival" in engines:
        missing += [f"festival voice {v}" for v in FESTIVAL_VOICES
                    if not any(FESTIVAL_VOICE_DIR.glob(f"*/{v}"))]
    if shutil.which("sox") is None and engines & {"pico", "piper"}:
        missing.append("sox")  # the pseudo-speakers' perturbation
    if not FORTUNE_DIR.is_dir():
        missing.append(f"fortunes ({FORTUNE_DIR})")
    if not any(WORDNET_DIR.glob("data.*")):
        missing.append(f"wordnet-base ({WORDNET_DIR}/data.*)")
    return missing


def _importable(module: str) -> bool:
    """Whether module imports (only ever called for our own, non-GPL dependencies)."""
    try:
        importlib.import_module(module)
    except Exception:  # a broken binary wheel fails with more than ImportError
        return False
    return True


def _missing_python(engines: set[str]) -> list[str]:
    """Missing Python pieces: py_nanotts for pico; the piper CLI and its voices for piper."""
    missing = []
    if "pico" in engines and not _importable("py_nanotts"):
        missing.append("py-nanotts (py_nanotts)")
    if "piper" in engines:
        voices = [v for v, pkg in PIPER_VOICES.items() if _importable(pkg)]
        missing += [f"piper voice {pkg}" for v, pkg in PIPER_VOICES.items() if v not in voices]
        if voices and not _runs(piper_cmd(voices[0], "--help")):
            missing.append("piper-tts (python -m piper)")
    return missing


def _runs(cmd: list[str]) -> bool:
    """Whether a command runs and exits 0 (piper is checked by running it, never imported)."""
    try:
        return subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL,
                              timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def check_tools(engine_weights: dict[str, float] | None = None) -> None:
    """Raise RuntimeError naming what the engines in use (those with a positive weight, and
    flite for the held-out voice) lack, with the command that installs it; ValueError for an
    unknown engine."""
    engines = set(engine_shares(engine_weights)) | {HELDOUT_VOICE.split(":")[0]}
    debian, python = _missing_debian(engines), _missing_python(engines)
    fixes = ([APT_HINT] if debian else []) + ([PIP_HINT] if python else [])
    if fixes:
        raise RuntimeError(f"built-in corpus needs {', '.join(debian + python)}; install with: "
                           + " and ".join(fixes))


def _check_stamp(out_dir: Path, seed: int, shares: dict[str, float]) -> None:
    """Refuse to resume into audio made with another seed, plan version or engine shares (it
    would be mixed)."""
    stamp = out_dir / "audio" / "builtin_plan.json"
    want = {"seed": seed, "plan_version": PLAN_VERSION,
            "engine_shares": {e: round(w, 6) for e, w in shares.items()}}
    if stamp.exists():
        have = json.loads(stamp.read_text())
        if have != want:
            raise ValueError(f"{out_dir}: audio was made with {have}, not {want}; use a new folder")
        return
    atomic_write_text(stamp, json.dumps(want))


def _say(msg: str, progress: bool) -> None:
    """A summary line: on stderr next to the progress bar, else to the log."""
    if progress:
        print(msg, file=sys.stderr)
    else:
        log.info(msg)


def _make_audio_dirs(audio_root: Path) -> None:
    """One folder per split, cleared of the temporary files a killed run leaves."""
    for split in SPLITS:
        (audio_root / split).mkdir(parents=True, exist_ok=True)
        for stale in (audio_root / split).glob(".*.tmp"):
            stale.unlink()


def prepare_builtin(out_dir, hours: float = 2.0, dev_hours: float = 0.15, test_hours: float = 0.15,
                    seed: int = 0, nj: int = 2, progress: bool = True,
                    engine_weights: dict[str, float] | None = None) -> dict[str, Path]:
    """Synthesise the built-in corpus and write its manifests; returns {split: manifest path}.

    out_dir: corpus folder (audio/, manifests/ are made inside; an existing one is resumed).
    hours / dev_hours / test_hours: target audio per split (train is sized to within a few %;
        test_unseen_voice re-speaks the test sentences, so it has the test's length roughly).
    seed: fixes sentences, pools, voices and all per-utterance parameters.
    nj: synthesis worker processes. progress: show a progress bar and a summary on stderr.
    engine_weights: {engine: share} of espeak, flite, festival, pico, piper (absent or 0: not
        used; None: voices.ENGINE_WEIGHTS); the held-out voice is flite's whatever they are.
    Utterances that fail to synthesise are left out of the manifests and counted.
    """
    check_tools(engine_weights)
    out_dir = Path(out_dir)
    _check_stamp(out_dir, seed, engine_shares(engine_weights))
    by_source = collect_sentences()
    pools = split_pools([s for v in by_source.values() for s in v], seed)
    _say("builtin sentences: " + ", ".join(f"{k} {len(v)}" for k, v in by_source.items())
         + " | pools: " + ", ".join(f"{k} {len(v)}" for k, v in pools.items()), progress)
    plan = plan_corpus(pools, hours, dev_hours, test_hours, seed, engine_weights)
    _make_audio_dirs(out_dir / "audio")
    done = synthesise([j for s in SPLITS for j in plan[s]], out_dir / "audio", nj, progress)
    mdir = out_dir / "manifests"
    mdir.mkdir(parents=True, exist_ok=True)
    paths = {split: _write_split(mdir, split, plan[split], done, progress,
                                 {"train": hours, "dev": dev_hours, "test": test_hours}.get(split))
             for split in SPLITS}
    text = "".join(s + "\n" for s in pools["train"])
    atomic_write_text(mdir / "train_text.txt", text)
    atomic_write_text(mdir / "synthetic_text.txt", text)
    return paths


def _write_split(mdir: Path, split: str, jobs: list[dict], done: dict, progress: bool,
                 requested: float | None) -> Path:
    """Write one manifest (plan order) and report its size and failures."""
    entries, failures = [], []
    for job in jobs:
        duration, error = done[job["id"]]
        if error is not None:
            failures.append(error)
            continue
        wav = mdir.parent / "audio" / split / f"{job['id']}.wav"
        entries.append({"id": job["id"], "audio_filepath": os.path.relpath(wav, mdir),
                        "duration": duration, "text": job["text"], "speaker": job["speaker"]})
    path = mdir / f"{split}.jsonl"
    write_manifest(path, entries)
    for err in failures[:5]:
        log.warning("synthesis failed: %s", err)
    hours = sum(e["duration"] for e in entries) / 3600
    want = f" (requested {requested:.3f} h)" if requested is not None else ""
    _say(f"builtin {split}: {len(entries)} utterances, {hours:.3f} h{want}, "
         f"{len(failures)} failed", progress)
    return path


def _parse_weights(text: str) -> dict[str, float]:
    """'pico=1,piper=2' -> {'pico': 1.0, 'piper': 2.0}."""
    try:
        return {k.strip(): float(v) for k, v in (kv.split("=") for kv in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ENGINE=WEIGHT,... not {text!r}") from None


def main(argv: list[str] | None = None) -> None:
    """Command line: python -m data_prep.builtin --out DIR [--hours H] [--seed S] [--nj N]
    [--engines ENGINE=WEIGHT,...]."""
    ap = argparse.ArgumentParser(prog="python -m data_prep.builtin",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="corpus folder (resumed if it exists)")
    ap.add_argument("--hours", type=float, default=2.0, help="training audio, hours")
    ap.add_argument("--dev-hours", type=float, default=0.15)
    ap.add_argument("--test-hours", type=float, default=0.15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nj", type=int, default=2, help="worker processes")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--engines", type=_parse_weights, default=None,
                    help="engine shares, e.g. pico=1,piper=1 (default: voices.ENGINE_WEIGHTS)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for split, path in prepare_builtin(a.out, a.hours, a.dev_hours, a.test_hours, a.seed, a.nj,
                                       not a.no_progress, a.engines).items():
        print(f"{split}\t{path}")
