"""Your own recordings: a folder of audio files with transcripts next to them, and a CSV table
-> asr prepare -> features -> training steps -> decode; a corpus of bad input where every bad
item is reported once (file and reason) and the good ones are kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from test_prepare_common import corpus_config, pipeline, read_jsonl, sentences, tone

GOOD_FORMATS = [  # (extension, sample rate, channels, soundfile format)
    (".wav", 16000, 1, "WAV"), (".flac", 44100, 2, "FLAC"), (".wav", 8000, 1, "WAV"),
    (".ogg", 48000, 1, "OGG"), (".mp3", 22050, 1, "MP3"), (".wav", 48000, 2, "WAV"),
]


def _write(path: Path, text: str, rate: int = 16000, channels: int = 1, fmt: str = "WAV", seed=0):
    wav = tone(text, rate, seed=seed)
    data = np.stack([wav, 0.5 * wav], 1) if channels == 2 else wav
    sf.write(path, data, rate, format=fmt)
    path.with_suffix(".txt").write_text(text.capitalize() + ".\n", encoding="utf-8")


def make_good(base: Path, n: int = 12) -> dict[str, str]:
    """n good recordings of two speakers in several formats/rates; {id: text}."""
    texts = {}
    for i, text in enumerate(sentences(n, seed=5)):
        ext, rate, ch, fmt = GOOD_FORMATS[i % len(GOOD_FORMATS)]
        spk = base / f"speaker{i % 2}"
        spk.mkdir(parents=True, exist_ok=True)
        _write(spk / f"rec{i:02d}{ext}", text, rate, ch, fmt, seed=i)
        texts[f"speaker{i % 2}-rec{i:02d}"] = text
    return texts


def make_bad(base: Path) -> dict[str, str]:
    """One file per kind of bad input; {file name: reason expected in the report}."""
    bad = base / "speaker9"
    bad.mkdir(parents=True)
    sr = 16000
    _write(bad / "truncated.flac", "ab cd ef", fmt="FLAC")
    data = (bad / "truncated.flac").read_bytes()
    (bad / "truncated.flac").write_bytes(data[: len(data) // 2])
    _write(bad / "truncated.wav", "ab cd ef")
    data = (bad / "truncated.wav").read_bytes()
    (bad / "truncated.wav").write_bytes(data[: len(data) // 2])
    _write(bad / "corrupt.wav", "ab")
    (bad / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunkjunkjunk" * 4)
    (bad / "zero.wav").write_bytes(b"")
    sf.write(bad / "nosamples.wav", np.zeros(0, np.float32), sr)
    (bad / "nosamples.txt").write_text("ab")
    (bad / "zero.txt").write_text("ab")
    sf.write(bad / "silent.wav", np.zeros(sr, np.float32), sr, subtype="PCM_16")
    (bad / "silent.txt").write_text("ab cd")
    for name, value in (("nan", np.nan), ("inf", np.inf)):
        x = tone("ab cd")
        x[100:200] = value
        sf.write(bad / f"{name}.wav", x, sr, subtype="FLOAT")
        (bad / f"{name}.txt").write_text("ab cd")
    _write(bad / "badutf8.wav", "ab")
    (bad / "badutf8.txt").write_bytes(b"ab \xff\xfe cd")
    _write(bad / "empty.wav", "ab")
    (bad / "empty.txt").write_text("  ?! \n")
    _write(bad / "oov.wav", "ab cd")
    (bad / "oov.txt").write_text("straße 東京", encoding="utf-8")
    sf.write(bad / "toolong.wav", tone("a"), sr)
    (bad / "toolong.txt").write_text("abc fed abc fed abc fed abc fed abc fed abc fed abc fed")
    (bad / "orphan.txt").write_text("ab cd")                   # transcript, audio missing
    (bad / "dirfile.wav").mkdir()                              # a directory where a file should be
    (bad / "dirfile.txt").write_text("ab")
    sf.write(bad / "untranscribed.wav", tone("ab"), sr)        # audio, transcript missing
    return {"truncated.flac": "cannot decode audio", "truncated.wav": "truncated audio",
            "corrupt.wav": "cannot decode audio", "zero.wav": "audio has no samples",
            "nosamples.wav": "audio has no samples", "silent.wav": "silent audio",
            "nan.wav": "NaN or infinite samples", "inf.wav": "NaN or infinite samples",
            "badutf8.wav": "transcript is not valid UTF-8", "empty.wav": "empty transcript",
            "oov.wav": "characters outside the vocabulary",
            "toolong.wav": "label longer than the subsampled frames",
            "orphan.txt": "missing file", "dirfile.wav": "not a file",
            "untranscribed.wav": "no transcript"}


def test_folder_with_bad_input_reports_each_once_and_trains_on_the_rest(tmp_path, capsys):
    from asr.cli import main
    source = tmp_path / "recordings"
    good = make_good(source)
    expected_bad = make_bad(source)
    cfg = corpus_config(tmp_path, "folder", source, dev_fraction=0.2, test_fraction=0.2)
    summary, _ = pipeline(cfg)
    out = capsys.readouterr().out
    assert summary.usable == len(good) and len(summary.rejects) == len(expected_bad)
    for name, reason in expected_bad.items():
        lines = [line for line in out.splitlines() if f"speaker9/{name}:" in line]
        assert len(lines) == 1 and reason in lines[0], (name, lines)
    entries = {e["id"]: e for s in ("train", "dev", "test")
               for e in read_jsonl(Path(cfg.data.root) / "manifests" / f"{s}.jsonl")}
    assert {k: e["text"] for k, e in entries.items()} == good
    assert entries["speaker1-rec01"]["speaker"] == "speaker1"  # 44.1 kHz stereo flac: good
    rejected = (Path(cfg.data.root) / "manifests" / "rejected.tsv").read_text().splitlines()
    assert len(rejected) == 1 + len(expected_bad)
    # the command line: exit 0 while something is usable, 1 when nothing is
    args = ["prepare", "data.corpus=folder", f"data.root={tmp_path}/cli", "data.nj=2"]
    assert main([*args, f"data.source={source}"]) == 0
    only_bad = tmp_path / "only_bad"
    make_bad(only_bad)
    assert main([*args, f"data.source={only_bad}", f"data.root={tmp_path}/cli_bad"]) == 1
    assert "no usable utterance" in capsys.readouterr().out


def test_csv_table_with_split_column(tmp_path):
    clips = tmp_path / "table" / "clips"
    clips.mkdir(parents=True)
    rows = ["file_name,transcription,speaker,split"]
    for i, text in enumerate(sentences(10, seed=8)):
        sf.write(clips / f"c{i}.wav", tone(text, seed=i), 16000)
        split = "dev" if i in (3, 7) else "test" if i in (4, 8) else "train"
        rows.append(f'clips/c{i}.wav,"{text.upper()}, ok",s{i % 3},{split}')
    rows.append("clips/missing.wav,ab,s0,train")
    (tmp_path / "table" / "list.csv").write_text("\n".join(rows) + "\n")
    cfg = corpus_config(tmp_path, "folder", tmp_path / "table" / "list.csv")
    summary, _ = pipeline(cfg, {"train": 6, "dev": 2, "test": 2})
    assert [r.kind for r in summary.rejects] == ["missing file"]
    train = read_jsonl(Path(cfg.data.root) / "manifests" / "train.jsonl")
    assert train[0]["text"].endswith(" ok") and train[0]["speaker"] == "s0"
