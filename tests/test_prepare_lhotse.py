"""The lhotse bridge: manifests written by lhotse itself (RecordingSet + SupervisionSet, and a
CutSet) over long recordings -> asr prepare (segments: offset + duration) -> features ->
training steps -> decode; our manifests exported back load in lhotse; offset segments are read
alone everywhere (features, shards, validation, Kaldi export)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from test_prepare_common import corpus_config, pipeline, read_jsonl, sentences, tone


SR = 16000
GAP = 0.3


def long_recording(path: Path, texts: list[str], seed: int) -> list[tuple[float, float, str]]:
    """One wav of the texts' tone utterances with GAP s of silence between; (start, dur, text)."""
    pieces, spans, t = [], [], 0.0
    for k, text in enumerate(texts):
        wav = tone(text, SR, seed=seed * 100 + k)
        pieces += [wav, np.zeros(int(GAP * SR), np.float32)]
        spans.append((round(t, 4), len(wav) / SR, text))
        t += len(wav) / SR + GAP
    sf.write(path, np.concatenate(pieces), SR)
    return spans


def make_lhotse_corpus(base: Path) -> Path:
    """lhotse manifests of 'mini': train-clean (recordings + supervisions, 2 long recordings,
    one supervision without text, one recording from a URL), dev and test (CutSets)."""
    from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet
    audio, out = base / "audio", base / "manifests"
    audio.mkdir(parents=True)
    out.mkdir()
    for split, n_recs, per_rec in (("train-clean", 2, 5), ("dev", 1, 3), ("test", 1, 3)):
        recs, sups = [], []
        for r in range(n_recs):
            path = audio / f"{split}-{r}.wav"
            spans = long_recording(path, sentences(per_rec, seed=len(split) * 10 + r), seed=r)
            rec = Recording.from_file(path, recording_id=f"{split}-{r}")
            recs.append(rec)
            for k, (start, dur, text) in enumerate(spans):
                sups.append(SupervisionSegment(id=f"{split}-{r}-{k}", recording_id=rec.id, start=start,
                                               duration=dur, text=text.upper() + ".",
                                               speaker=f"spk{r}", language="English"))
        if split == "train-clean":
            sups.append(SupervisionSegment(id="no-text", recording_id=recs[0].id, start=0.0,
                                           duration=0.5, speaker="spk0"))
            recordings, supervisions = RecordingSet.from_recordings(recs), SupervisionSet.from_segments(sups)
            recordings.to_file(out / f"mini_recordings_{split}.jsonl.gz")
            supervisions.to_file(out / f"mini_supervisions_{split}.jsonl.gz")
        else:
            cuts = CutSet.from_manifests(recordings=RecordingSet.from_recordings(recs),
                                         supervisions=SupervisionSet.from_segments(sups))
            cuts.trim_to_supervisions(keep_overlapping=False).to_file(out / f"mini_cuts_{split}.jsonl.gz")
    return out


def test_lhotse_manifests_import_and_train(tmp_path):
    source = make_lhotse_corpus(tmp_path / "mini")
    cfg = corpus_config(tmp_path, "lhotse", source, subsets=["train-clean=train", "dev", "test"])
    summary, hyps = pipeline(cfg, {"train": 10, "dev": 3, "test": 3})
    assert [r.kind for r in summary.rejects] == ["no transcript"]
    root = Path(cfg.data.root)
    train = read_jsonl(root / "manifests" / "train.jsonl")
    first = train[0]
    assert first["id"] == "train-clean-0-0" and first["speaker"] == "spk0" and first["offset"] == 0.0
    assert train[1]["offset"] > 0 and not first["text"].endswith(".") and first["text"].islower()
    assert all(Path(root / "manifests" / e["audio_filepath"]).resolve().name.startswith("train-clean")
               for e in train)
    test = read_jsonl(root / "manifests" / "test.jsonl")  # from cuts: segments of test-0.wav
    assert [e["id"] for e in test] == ["test-0-0", "test-0-1", "test-0-2"] and test[2]["offset"] > 1
    # each segment's features cover only its span
    from asr.data.store import FeatureStore
    store = FeatureStore(root / "features" / "test")
    for i, e in enumerate(test):
        assert abs(store.entries[i]["frames"] - e["duration"] * 100) <= 2 and store.entries[i]["audio_offset"] == e["offset"]
    assert len(hyps) == 3


def test_offset_segments_are_read_alone(tmp_path):
    from asr.data.audio import AudioError, entry_audio, load_audio
    from asr.data.checks import TRUNCATED, Checks, probe
    x = (np.arange(3 * SR, dtype=np.float32) % 1000) / 2000
    sf.write(tmp_path / "a.wav", x, SR, subtype="FLOAT")
    seg = entry_audio({"audio_filepath": str(tmp_path / "a.wav"), "offset": 1.25, "duration": 0.5})
    assert np.allclose(seg.numpy(), x[int(1.25 * SR):int(1.75 * SR)])
    assert len(entry_audio({"audio_filepath": str(tmp_path / "a.wav"), "duration": 3.0})) == 3 * SR
    with pytest.raises(AudioError, match=r"a.wav \[4.000 s \+0.500 s\]: .*after the end"):
        load_audio(tmp_path / "a.wav", SR, 4.0, 0.5)
    item = {"id": "u", "audio": str(tmp_path / "a.wav"), "text": "ab", "offset": 2.8, "duration": 0.6}
    (result,) = probe(item, Checks(subsample=2))
    assert result[0] == "bad" and result[2] == TRUNCATED and "2.800-3.400 s" in result[3]
    item.update(offset=1.0, duration=0.5)
    (result,) = probe(item, Checks(subsample=2))
    assert result[0] == "ok" and result[1]["offset"] == 1.0 and result[1]["duration"] == 0.5


def test_segments_in_shards_validation_and_kaldi_export(tmp_path):
    from asr.config import FeatureConfig
    from asr.data.manifest import write_manifest
    from asr.data.shard_writer import write_shards
    from asr.data.checks import Checks
    from asr.data.validate import validate
    from data_prep.kaldi import export
    spans = long_recording(tmp_path / "long.wav", ["ab cd", "ef", "abc fed"], seed=0)
    entries = [{"id": f"u{k}", "audio_filepath": str(tmp_path / "long.wav"), "offset": s,
                "duration": round(d, 3), "text": t, "speaker": "s"} for k, (s, d, t) in enumerate(spans)]
    write_manifest(tmp_path / "m.jsonl", entries)
    index = write_shards(tmp_path / "m.jsonl", tmp_path / "shards", feature_cfg=FeatureConfig())
    assert index["samples"] == 3 and abs(index["duration"] - sum(d for _, d, _ in spans)) < 0.01
    summary = validate([tmp_path / "m.jsonl"], Checks(subsample=2, normalize=False))
    assert summary.usable == 3 and not summary.rejects
    assert export(tmp_path / "m.jsonl", tmp_path / "kaldi") == 3
    segments = (tmp_path / "kaldi" / "segments").read_text().splitlines()
    assert segments[1] == f"s-u1 rec000000 {spans[1][0]:.3f} {spans[1][0] + round(spans[1][1], 3):.3f}"
    assert (tmp_path / "kaldi" / "wav.scp").read_text().startswith("rec000000 ")


def test_export_back_to_lhotse(tmp_path):
    from asr.cli import main
    from asr.data.manifest import write_manifest
    from lhotse import CutSet, load_manifest
    spans = long_recording(tmp_path / "long.wav", ["ab cd", "ef"], seed=1)
    sf.write(tmp_path / "short.wav", tone("fed", SR), SR)
    entries = [{"id": f"u{k}", "audio_filepath": str(tmp_path / "long.wav"), "offset": s,
                "duration": round(d, 3), "text": t, "speaker": "s1"} for k, (s, d, t) in enumerate(spans)]
    entries.append({"id": "whole", "audio_filepath": str(tmp_path / "short.wav"),
                    "duration": len(tone("fed", SR)) / SR, "text": "fed", "speaker": "s2"})
    write_manifest(tmp_path / "train.jsonl", entries)
    assert main(["export-lhotse", str(tmp_path / "train.jsonl"), str(tmp_path / "out"), "--corpus", "mine"]) == 0
    recordings = load_manifest(tmp_path / "out" / "mine_recordings_train.jsonl.gz")
    supervisions = load_manifest(tmp_path / "out" / "mine_supervisions_train.jsonl.gz")
    assert len(recordings) == 2 and len(supervisions) == 3
    cuts = CutSet.from_manifests(recordings=recordings, supervisions=supervisions).trim_to_supervisions()
    by_id = {c.supervisions[0].id: c for c in cuts}
    assert abs(by_id["u1"].start - spans[1][0]) < 1e-6 and by_id["whole"].supervisions[0].text == "fed"
    audio = by_id["u1"].load_audio()
    assert abs(audio.shape[1] - spans[1][1] * SR) <= 2


def test_nemo_output_manifest_scores_pred_text_against_text(tmp_path, capsys):
    """NeMo's transcribe output (text = reference, pred_text = hypothesis; no ids, segments by
    offset) scores as both REF and HYP."""
    import json
    from asr.cli import main
    rows = [{"audio_filepath": "/d/long.wav", "offset": 0.0, "duration": 1.0, "text": "the cat sat",
             "pred_text": "the cat sad"},
            {"audio_filepath": "/d/long.wav", "offset": 1.5, "duration": 1.0, "text": "on the mat",
             "pred_text": "on the mat"}]
    nemo = tmp_path / "nemo_out.jsonl"
    nemo.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["score", str(nemo), str(nemo)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("WER 16.67") and "1 sub, 0 del, 0 ins of 6 reference words" in out
