"""LJSpeech: a miniature LJSpeech-1.1 (metadata.csv + 22.05 kHz wavs) -> asr prepare ->
features -> training steps -> decode."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf

from test_prepare_common import corpus_config, pipeline, read_jsonl, sentences, tone


def make_ljspeech(base: Path, n: int = 15) -> Path:
    corpus = base / "LJSpeech-1.1"
    (corpus / "wavs").mkdir(parents=True)
    lines = []
    for i, text in enumerate(sentences(n, seed=3)):
        uid = f"LJ001-{i + 1:04d}"
        sf.write(corpus / "wavs" / f"{uid}.wav", tone(text, sr=22050, seed=i), 22050, subtype="PCM_16")
        raw = text.upper() + (" 2." if i == 0 else ".")
        normalized = text.upper() + (" two." if i == 0 else ".")
        lines.append(f"{uid}|{raw}|{normalized}")
    (corpus / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (corpus / "README").write_text("LJ Speech Dataset\n")
    return base


def test_ljspeech_prepare_train_decode(tmp_path):
    source = make_ljspeech(tmp_path / "lj")
    cfg = corpus_config(tmp_path, "ljspeech", source, dev_fraction=0.2, test_fraction=0.2)
    summary, _ = pipeline(cfg)
    counts = {s: summary.splits[s][0] for s in ("train", "dev", "test")}
    assert sum(counts.values()) == 15 and counts["dev"] == 3 and counts["test"] == 3
    entries = [e for s in counts for e in read_jsonl(Path(cfg.data.root) / "manifests" / f"{s}.jsonl")]
    first = next(e for e in entries if e["id"] == "LJ001-0001")
    assert first["text"].endswith(" two") and first["speaker"] == "LJ"
    assert len({e["id"] for e in entries}) == 15  # every clip in exactly one split
