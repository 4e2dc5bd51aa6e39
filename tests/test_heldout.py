"""Held-out real-speech splits: disjoint by speaker and by line, the same for a seed."""

import json

from data_prep.heldout import (LINE_IN_HELDOUT, choose_heldout_speakers, make_heldout_splits,
                               speaker_hours)


def _manifest(root, entries):
    mdir = root / "manifests"
    mdir.mkdir(parents=True)
    (mdir / "all.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))


def _entries():
    """A main character (half the hours) and twelve small ones; some lines shared."""
    out = [{"id": f"main-{i}", "audio_filepath": f"../audio/main-{i}.wav", "duration": 6.0,
            "text": "a shared line" if i == 0 else f"main line {i}", "speaker": "MAIN"} for i in range(60)]
    for s in range(12):
        for i in range(5):
            out.append({"id": f"s{s}-{i}", "audio_filepath": f"../audio/s{s}-{i}.wav", "duration": 6.0,
                        "text": "a shared line" if i == 0 else f"speaker {s} line {i}", "speaker": f"S{s}"})
    return out


def test_heldout_speakers_are_small_disjoint_and_seeded():
    hours = speaker_hours(_entries())
    test, dev = choose_heldout_speakers(hours, test_hours=0.02, dev_hours=0.02, seed=3, max_share=0.1)
    assert test and dev and not set(test) & set(dev) and "MAIN" not in test + dev
    assert sum(hours[s] for s in test) >= 0.02 and sum(hours[s] for s in dev) >= 0.02
    assert (test, dev) == choose_heldout_speakers(hours, 0.02, 0.02, seed=3, max_share=0.1)
    assert (test, dev) != choose_heldout_speakers(hours, 0.02, 0.02, seed=4, max_share=0.1)


def test_splits_disjoint_by_speaker_and_line(tmp_path):
    _manifest(tmp_path, _entries())
    report = make_heldout_splits(tmp_path, test_hours=0.02, dev_hours=0.02, seed=0, max_share=0.1)
    read = {split: [json.loads(line) for line in (tmp_path / "manifests" / f"{split}_real.jsonl").open()]
            for split in ("train", "dev", "test")}
    speakers = {split: {e["speaker"] for e in es} for split, es in read.items()}
    assert not speakers["train"] & speakers["test"] and not speakers["train"] & speakers["dev"]
    assert not speakers["dev"] & speakers["test"] and "MAIN" in speakers["train"]
    heldout_lines = {e["text"] for e in read["test"] + read["dev"]}
    assert "a shared line" in heldout_lines
    assert not heldout_lines & {e["text"] for e in read["train"]}
    # every training utterance with a held-out line is dropped and counted, nothing else
    shared_in_train = 1 + sum(1 for s in speakers["train"] if s != "MAIN")
    assert report["dropped"] == {LINE_IN_HELDOUT: shared_in_train}
    assert sum(len(es) for es in read.values()) + shared_in_train == len(_entries())
    assert read["train"][0]["audio_filepath"].startswith("../audio/")  # relative paths kept
