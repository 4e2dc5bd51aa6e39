"""One voice's speech for the adaptation recipe (recipes/adapt): a folder corpus of the built-in
corpus's held-out voice (flite:awb, never in its training) speaking sentences that none of the
built-in corpus's manifests and none of its language-model text hold, cut by sentence into
train (what the model adapts on), dev (model selection) and test.

    python -m data_prep.adapt_voice --builtin data/builtin --out data/adapt/source

writes <out>/{train,dev,test}/awb/<id>.wav + <id>.txt, the layout `asr prepare` reads with
data.corpus=folder (data_prep/folder.py), as it would read a folder of your own recordings.

Why a synthetic voice: every real voice of the built-in corpus (the 49 of Debian's game data) is
in its train_real, dev_real or test_real, and the built-in LM holds every real training line, so
no real line is left that is neither trained on, nor tuned on, nor known to the LM.
The sentences come from the built-in corpus's dev pool (data_prep/builtin/text.py: never
language-model text, never trained on), less every line of its manifests and LM text.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from asr.utils import atomic_write_text
from data_prep.builtin.synthesis import synthesise
from data_prep.builtin.text import collect_sentences, split_pools
from data_prep.builtin.voices import HELDOUT_VOICE, plan_split

SPEAKER = HELDOUT_VOICE.split(":")[1]  # the folder below each split: the speaker's name
MINUTES = {"test": 8.0, "dev": 2.0, "train": 20.0}  # test first: it keeps its lines if train grows


def used_texts(builtin: Path) -> set[str]:
    """Every line the built-in model or its LM has met: the texts of all its manifests, its
    training text and its LM text (lm/text.txt, when built)."""
    used: set[str] = set()
    for path in sorted((builtin / "manifests").glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            used.update(json.loads(line)["text"] for line in f if line.strip())
    for path in (builtin / "manifests" / "train_text.txt", builtin / "lm" / "text.txt"):
        if path.is_file():
            used.update(line.strip() for line in path.open(encoding="utf-8"))
    return used


def fresh_sentences(used: set[str], pool_seed: int, seed: int) -> list[str]:
    """The built-in dev pool (pool_seed: the built-in corpus's data.seed) less `used`, shuffled
    by seed."""
    by_source = collect_sentences()
    pool = split_pools([s for v in by_source.values() for s in v], pool_seed)["dev"]
    fresh = sorted(set(pool) - used)
    random.Random(seed).shuffle(fresh)
    return fresh


def plan(sentences: list[str], minutes: dict[str, float], seed: int) -> dict[str, list[dict]]:
    """Synthesis jobs of each split, each split from its own slice of the sentences (no line in
    two splits), sized by predicted duration; every job speaks with HELDOUT_VOICE."""
    jobs, start = {}, 0
    for split, mins in minutes.items():
        need = int(mins * 60 / 1.5) + 1  # sentences are longer than 1.5 s: enough of them
        if start + need > len(sentences):
            raise RuntimeError(f"only {len(sentences)} unused sentences: fewer minutes, please")
        jobs[split] = plan_split(split, sentences[start:start + need], mins / 60, [HELDOUT_VOICE],
                                 seed, {"flite": 1.0})
        start += need
    return jobs


def write_folder(out: Path, jobs: dict[str, list[dict]], nj: int, progress: bool) -> dict:
    """Synthesise the jobs into <out>/<split>/<SPEAKER>/<id>.wav with <id>.txt beside; returns
    {split: [utterances, minutes, failures]}. Wavs already there are kept (resume)."""
    summary = {}
    for split, split_jobs in jobs.items():
        folder = out / split / SPEAKER
        folder.mkdir(parents=True, exist_ok=True)
        for job in split_jobs:
            job["split"] = f"{split}/{SPEAKER}"  # synthesise writes <audio_root>/<split>/<id>.wav
        done = synthesise(split_jobs, out, nj, progress)
        seconds, failed = 0.0, 0
        for job in split_jobs:
            duration, _ = done[job["id"]]
            if duration is None:
                failed += 1
                continue
            atomic_write_text(folder / f"{job['id']}.txt", job["text"] + "\n")
            seconds += duration
        summary[split] = [len(split_jobs) - failed, round(seconds / 60, 2), failed]
    return summary


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--builtin", default="data/builtin", help="the built-in corpus folder")
    p.add_argument("--out", default="data/adapt/source", help="the folder corpus to write")
    p.add_argument("--pool-seed", type=int, default=0, help="the built-in corpus's data.seed")
    p.add_argument("--seed", type=int, default=1, help="sentence order and voice parameters")
    p.add_argument("--train-minutes", type=float, default=MINUTES["train"])
    p.add_argument("--nj", type=int, default=2)
    args = p.parse_args(argv)
    sentences = fresh_sentences(used_texts(Path(args.builtin)), args.pool_seed, args.seed)
    jobs = plan(sentences, {**MINUTES, "train": args.train_minutes}, args.seed)
    for split, (n, mins, failed) in write_folder(Path(args.out), jobs, args.nj, True).items():
        print(f"{split}: {n} utterances, {mins} min of {HELDOUT_VOICE}"
              + (f", {failed} failed" if failed else ""))


if __name__ == "__main__":
    main()
