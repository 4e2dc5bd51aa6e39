"""Held-out splits that mean something for real speech: test and dev voices never heard in
training, and test and dev lines never seen in training.

A corpus of recorded characters (a game's cast, a voice pack) is prepared into one manifest
("all"); ``make_heldout_splits`` then cuts it by speaker: whole speakers go to test or dev, drawn
in a seeded order among those that hold at most ``max_share`` of the hours (a main character
stays in training, or training would lose most of the corpus), until each split has its hours.
Training keeps every other speaker's utterances except those whose text is a test or dev line
(the same line read by another voice would let the test measure memory, not recognition).

    python -m data_prep.heldout --root data/queen --test-hours 0.25 --dev-hours 0.15
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter, defaultdict
from pathlib import Path

from asr.data.manifest import write_manifest

LINE_IN_HELDOUT = "line of a test or dev utterance"


def read_as_written(path: Path) -> list[dict]:
    """A manifest's entries with their audio paths as written (relative ones kept relative), for
    new manifests written beside it."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def speaker_hours(entries: list[dict]) -> dict[str, float]:
    """Hours of speech per speaker."""
    hours: dict[str, float] = defaultdict(float)
    for e in entries:
        hours[e.get("speaker", "")] += float(e["duration"]) / 3600
    return dict(hours)


def choose_heldout_speakers(hours: dict[str, float], test_hours: float, dev_hours: float,
                            seed: int = 0, max_share: float = 0.03) -> tuple[list[str], list[str]]:
    """(test speakers, dev speakers): disjoint, drawn in a seeded order from the speakers with
    at most max_share of all hours, each split filled until it reaches its hours."""
    total = sum(hours.values())
    candidates = sorted(s for s, h in hours.items() if s and h <= max_share * total)
    random.Random(seed).shuffle(candidates)
    picked: dict[str, list[str]] = {"test": [], "dev": []}
    for split, want in (("test", test_hours), ("dev", dev_hours)):
        got = 0.0
        while candidates and got < want:
            speaker = candidates.pop()
            picked[split].append(speaker)
            got += hours[speaker]
    return sorted(picked["test"]), sorted(picked["dev"])


MIN_SPEAKERS = 3  # a source with fewer voices stays in training (holding one out leaves ~none)


def choose_per_source(entries: list[dict], test_hours: float, dev_hours: float, seed: int = 0,
                      max_share: float = 0.03, max_loss: float = 0.5, exclude=frozenset()
                      ) -> tuple[list[str], list[str], list[str]]:
    """(test speakers, dev speakers, sources giving none) over several sources whose speakers are
    named "<source>:<name>".

    Each source with at least MIN_SPEAKERS speakers gives each split its share of the hours
    (at least one speaker); the candidates are its speakers with at most max(max_share,
    1.2 / its number of speakers) of its hours, so small voice packs can give a voice too. A
    source whose held-out lines would remove more than max_loss of its remaining training
    utterances (voice packs that all say the same words) gives none and stays in training.
    Speakers in `exclude` are never held out.
    """
    by_source: dict[str, list[dict]] = defaultdict(list)
    for e in entries:
        by_source[e.get("speaker", "").split(":", 1)[0]].append(e)
    total = sum(speaker_hours(entries).values())
    test, dev, kept = [], [], []
    for source, own in sorted(by_source.items()):
        hours = speaker_hours(own)
        if len(hours) < MIN_SPEAKERS:
            continue
        share = sum(hours.values()) / total
        hours = {s: h for s, h in hours.items() if s not in exclude}
        t, d = choose_heldout_speakers(hours, test_hours * share, dev_hours * share, seed,
                                       max(max_share, 1.2 / len(hours)))
        splits, dropped = split_by_speaker_and_line(own, t, d)
        if dropped[LINE_IN_HELDOUT] > max_loss * (len(splits["train"]) + dropped[LINE_IN_HELDOUT]):
            kept.append(source)
            continue
        test += t
        dev += d
    return sorted(test), sorted(dev), kept


def split_by_speaker_and_line(entries: list[dict], test_speakers, dev_speakers
                              ) -> tuple[dict[str, list[dict]], Counter]:
    """{"test", "dev", "train"} entries and the count of training utterances dropped because
    their text is a test or dev line."""
    test_speakers, dev_speakers = set(test_speakers), set(dev_speakers)
    splits: dict[str, list[dict]] = {"test": [], "dev": [], "train": []}
    for e in entries:
        speaker = e.get("speaker", "")
        split = "test" if speaker in test_speakers else "dev" if speaker in dev_speakers else "train"
        splits[split].append(e)
    heldout_lines = {e["text"] for e in splits["test"] + splits["dev"]}
    dropped: Counter = Counter()
    kept = []
    for e in splits["train"]:
        if e["text"] in heldout_lines:
            dropped[LINE_IN_HELDOUT] += 1
        else:
            kept.append(e)
    splits["train"] = kept
    return splits, dropped


def make_heldout_splits(root: str | Path, source: str = "all", suffix: str = "real",
                        test_hours: float = 0.25, dev_hours: float = 0.15, seed: int = 0,
                        max_share: float = 0.03) -> dict:
    """manifests/{train,dev,test}_<suffix>.jsonl from manifests/<source>.jsonl; returns what
    went where (speakers, utterances, hours, dropped)."""
    mdir = Path(root) / "manifests"
    # the entries as written: the new manifests sit beside it, so relative paths stay right
    entries = read_as_written(mdir / f"{source}.jsonl")
    hours = speaker_hours(entries)
    test_spk, dev_spk = choose_heldout_speakers(hours, test_hours, dev_hours, seed, max_share)
    splits, dropped = split_by_speaker_and_line(entries, test_spk, dev_spk)
    report = {"speakers": {"test": test_spk, "dev": dev_spk}, "dropped": dict(dropped)}
    for split, items in splits.items():
        write_manifest(mdir / f"{split}_{suffix}.jsonl", items)
        report[split] = {"utterances": len(items), "speakers": len({e.get("speaker") for e in items}),
                         "hours": round(sum(float(e["duration"]) for e in items) / 3600, 3)}
    return report


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m data_prep.heldout", description=__doc__.split("\n")[0])
    p.add_argument("--root", required=True, help="corpus folder (manifests/<source>.jsonl)")
    p.add_argument("--source", default="all")
    p.add_argument("--suffix", default="real", help="split names: train_<suffix>, ...")
    p.add_argument("--test-hours", type=float, default=0.25)
    p.add_argument("--dev-hours", type=float, default=0.15)
    p.add_argument("--max-share", type=float, default=0.03, help="largest speaker share held out")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    report = make_heldout_splits(a.root, a.source, a.suffix, a.test_hours, a.dev_hours, a.seed,
                                 a.max_share)
    for split in ("train", "dev", "test"):
        r = report[split]
        print(f"{split}_{a.suffix}: {r['utterances']} utterances, {r['speakers']} speakers, {r['hours']} h")
    print(f"held out: test {', '.join(report['speakers']['test'])}; dev {', '.join(report['speakers']['dev'])}")
    for reason, n in report["dropped"].items():
        print(f"dropped from train: {n} ({reason})")


if __name__ == "__main__":
    main()
