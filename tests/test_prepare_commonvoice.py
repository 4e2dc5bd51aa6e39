"""Common Voice: a miniature release folder (TSVs with the real columns, clips/*.mp3 at 48 kHz)
-> asr prepare -> features -> training steps -> decode."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf

from test_prepare_common import corpus_config, pipeline, read_jsonl, sentences, tone

HEADER = ["client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes",
          "down_votes", "age", "gender", "accents", "variant", "locale", "segment"]


def make_commonvoice(base: Path, counts=(("train", 8), ("dev", 3), ("test", 3))) -> Path:
    release = base / "cv-corpus-17.0-2024-03-15" / "en"
    (release / "clips").mkdir(parents=True)
    n = 0
    validated = []
    durations = ["clip\tduration[ms]"]
    for split, count in counts:
        rows = ["\t".join(HEADER)]
        for i, text in enumerate(sentences(count, seed=len(split))):
            clip = f"common_voice_en_{4000 + n}.mp3"
            wav = tone(text, sr=48000, seed=n)
            sf.write(release / "clips" / clip, wav, 48000, format="MP3")
            durations.append(f"{clip}\t{round(1000 * len(wav) / 48000)}")
            sentence = f'"{text.capitalize()}," she said.' if i == 0 else text.capitalize() + "."
            client = f"{'a' * 63}{n % 3}"  # client ids are long hex hashes
            row = [client, clip, f"s{n}", sentence, "", "2", "0", "twenties", "female_feminine",
                   "United States English", "", "en", ""]
            rows.append("\t".join(row))
            validated.append("\t".join(row))
            n += 1
        (release / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (release / "validated.tsv").write_text("\n".join(["\t".join(HEADER), *validated]) + "\n")
    (release / "invalidated.tsv").write_text("\t".join(HEADER) + "\n")
    (release / "clip_durations.tsv").write_text("\n".join(durations) + "\n")
    return base / "cv-corpus-17.0-2024-03-15"  # the folder above the language: found


def test_commonvoice_prepare_train_decode(tmp_path):
    source = make_commonvoice(tmp_path / "cv")
    cfg = corpus_config(tmp_path, "commonvoice", source)
    summary, hyps = pipeline(cfg, {"train": 8, "dev": 3, "test": 3})
    assert not summary.rejects
    train = read_jsonl(Path(cfg.data.root) / "manifests" / "train.jsonl")
    assert train[0]["id"] == "common_voice_en_4000" and train[0]["speaker"].startswith("aaa")
    assert train[0]["audio_filepath"].endswith("clips/common_voice_en_4000.mp3")
    assert '"' not in train[0]["text"] and train[0]["text"].endswith("she said")
    assert abs(train[0]["duration"] - len(tone(train[0]["text"].split(" she")[0], 48000)) / 48000) < 0.1
