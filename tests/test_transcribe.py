"""Transcription and the decoding commands with a real (tiny) model trained here on tone speech.

Tone speech (a tone per character, as conftest.tone_utterance) says exactly where every character sounds, so word
times from a long file cut into overlapping windows can be checked against the truth.
"""

import json
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from asr.cli import main
from asr.config import Config, FeatureConfig, apply
from asr.transcribe.outputs import stdout_text
from asr.transcribe.subtitles import parse_srt
from asr.transcribe.transcriber import Chunking, Transcriber, expand_inputs, stream_windows, transcribe_files
from conftest import CHAR_S, PAD_S, SPACE_S, SR, WORDS, noise, tone_speech, word_times  # noqa: F401
from asr.data.store import extract_features

def long_tone_file(path, n_utts=30, seed=1, rate=SR, channels=1):
    """Tone utterances separated by random pauses; returns the true word times."""
    rng = np.random.default_rng(seed)
    pieces, truth, t = [], [], 0.0
    for _ in range(n_utts):
        text = " ".join(rng.choice(WORDS, size=rng.integers(1, 4)))
        wav = tone_speech(text, rng, rate)
        gap = noise(int(rng.uniform(0.2, 1.2) * rate), rate, rng).astype(np.float32)
        truth += word_times(text, t)
        pieces += [wav, gap]
        t += (len(wav) + len(gap)) / rate
    sig = np.concatenate(pieces)
    if channels > 1:
        sig = np.stack([sig * (1 + 0.2 * (c % 2 * 2 - 1)) for c in range(channels)], axis=1)  # mean = sig
    sf.write(path, sig, rate)
    return truth


def assert_times_match(words, truth, tol=0.1, max_joined=0.15):
    """Every true word comes out once, in order, within tol seconds of its true times. The tiny
    tone model misses some of the 50 ms pauses between words, so two or more words may come out
    as one ("ef ab" -> "efab"): such a word must span the times of the words it joins, and at most
    max_joined of the true words may be joined to the one before. Anything else fails."""
    ref = [w for w, _, _ in truth]
    i = joined = 0
    for w in words:
        k = i + 1
        while k < len(ref) and len("".join(ref[i:k])) < len(w["word"]):
            k += 1
        assert "".join(ref[i:k]) == w["word"], (w, "expected", ref[i:k], "at true word", i)
        start, end = truth[i][1], truth[k - 1][2]
        assert abs(w["start"] - start) <= tol and abs(w["end"] - end) <= tol, (w, start, end)
        joined += k - 1 - i
        i = k
    assert i == len(ref), ("words missing at the end", ref[i:])
    assert joined <= max_joined * len(ref), f"{joined} of {len(ref)} words joined to the one before"


def assert_same_words(words, other, tol=0.03):
    """Two transcriptions of one file give the same words at the same times."""
    assert [w["word"] for w in words] == [w["word"] for w in other]
    for a, b in zip(words, other):
        assert abs(a["start"] - b["start"]) <= tol and abs(a["end"] - b["end"]) <= tol, (a, b)


def test_long_file_in_overlapping_windows_keeps_word_times(tone_run, tmp_path):
    truth = long_tone_file(tmp_path / "long.wav")  # ~45 s -> 8 windows of 8 s
    t = Transcriber(tone_run / "exp", chunking=Chunking(chunk_s=8.0, overlap_s=2.0))
    result = t.transcribe(tmp_path / "long.wav")
    assert_times_match(result["words"], truth)
    # stitched windows lose, repeat and shift no word: the same as the file in one window
    whole = Transcriber(tone_run / "exp", chunking=Chunking(chunk_s=60.0, overlap_s=2.0))
    assert_same_words(result["words"], whole.transcribe(tmp_path / "long.wav")["words"])
    assert all(0 < w["conf"] <= 1 for w in result["words"])
    # the same audio as 44.1 kHz stereo FLAC, through the command line, as SRT
    truth = long_tone_file(tmp_path / "long.flac", rate=44100, channels=2)
    rc = main(["transcribe", str(tone_run / "exp"), str(tmp_path / "long.flac"), "--format", "srt,json",
               "--out", str(tmp_path / "out"), "--chunk-s", "8", "--overlap-s", "2", "--no-progress"])
    assert rc == 0
    words = json.loads((tmp_path / "out" / "long.json").read_text())["words"]
    assert_times_match(words, truth)
    cues = parse_srt((tmp_path / "out" / "long.srt").read_text())
    assert " ".join(c.text for c in cues) == " ".join(w["word"] for w in words)
    k = 0
    for cue in cues:  # each cue spans its words' times
        n = len(cue.text.split())
        assert abs(cue.start - words[k]["start"]) <= 0.01 and abs(cue.end - words[k + n - 1]["end"]) <= 0.01
        k += n


def test_greedy_and_beam_agree_and_formats(tone_run, tmp_path, capsys):
    truth = long_tone_file(tmp_path / "a.wav", n_utts=4, seed=2)
    text = " ".join(w for w, _, _ in truth)
    for decoder in ("greedy", "beam"):
        t = Transcriber(tone_run / "exp", decoder=decoder)
        assert t(tmp_path / "a.wav") == text
    capsys.readouterr()
    results, errors = transcribe_files(tone_run / "exp", [str(tmp_path / "a.wav")], formats=["txt", "json"])
    assert capsys.readouterr().out == ""  # the library returns; the CLI prints
    results, errors = transcribe_files(tone_run / "exp", [str(tmp_path / "a.wav")], formats=["txt", "json"],
                                       on_result=lambda r: print(stdout_text(r, ["txt", "json"]), end=""))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{tmp_path / 'a.wav'}\t{text}" and json.loads(out[1])["text"] == text
    assert not errors
    main(["transcribe", str(tone_run / "exp"), str(tmp_path / "a.wav"), "--format", "vtt,txt",
          "--out", str(tmp_path / "o"), "--no-progress"])
    vtt = (tmp_path / "o" / "a.vtt").read_text()
    assert vtt.startswith("WEBVTT\n\n00:00:00.") and " --> " in vtt
    assert (tmp_path / "o" / "a.txt").read_text() == text + "\n"


def test_unreadable_files_are_named_and_the_others_transcribed(tone_run, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    long_tone_file(folder / "good.wav", n_utts=2)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    sf.write(folder / "empty.wav", np.zeros(0, np.float32), SR)
    (folder / "notes.txt").write_text("not audio, not picked up from a folder")
    assert sorted(p.name for p in expand_inputs([str(folder)])) == ["broken.wav", "empty.wav", "good.wav"]
    rc = main(["transcribe", str(tone_run / "exp"), str(folder), str(tmp_path / "missing.flac"),
               "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 3 and (tmp_path / "out" / "good.txt").is_file()  # 3: some files failed
    assert "3 of 4 file(s) could not be transcribed" in err
    for name in ("broken.wav: cannot decode audio", "empty.wav: audio has no samples", "missing.flac: no such file"):
        assert name in err
    rc = main(["transcribe", str(tone_run / "exp"), str(folder / "broken.wav"), "--no-progress"])
    assert rc == 1


def test_streaming_memory_stays_flat(tmp_path):
    """Reading a 10-minute 8 kHz stereo file in 10 s windows never holds more than ~a window."""
    rate, seconds = 8000, 600
    path = tmp_path / "ten_minutes.wav"
    with sf.SoundFile(path, "w", rate, 2, subtype="PCM_16") as f:
        block = (0.01 * np.random.default_rng(0).standard_normal((rate * 60, 2))).astype(np.float32)
        for _ in range(seconds // 60):
            f.write(block)
    whole = seconds * rate * 2 * 4  # the file as float32 would take 38 MB
    tracemalloc.start()
    total, n = 0.0, 0
    for w in stream_windows(path, 16000, Chunking(chunk_s=10.0, overlap_s=2.0)):
        total = w.start_s + len(w.audio) / 16000
        n += 1
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 75 and total == pytest.approx(seconds, abs=0.01)
    assert peak < whole / 8, peak


def test_decode_lm_and_tune_lm_commands(tone_run, capsys):
    config = str(tone_run / "exp" / "config.yaml")
    assert main(["lm", "build", "--config", config, "lm.order=3", "lm.char_order=4"]) == 0
    for decoder in ("greedy", "beam", "beam_lm"):
        assert main(["decode", "--config", config, f"decode.decoder={decoder}"]) == 0
        hyps = [json.loads(x) for x in (tone_run / "exp" / "decode" / "test" / decoder / "hyp.jsonl").open()]
        refs = [json.loads(x)["text"] for x in (tone_run / "manifests" / "test.jsonl").open()]
        assert [h["text"] for h in hyps] == refs, decoder
        assert all("start" in w and "conf" in w for h in hyps for w in h["words"])
    assert main(["decode", "--config", config, "decode.decoder=beam_lm", "decode.lexicon=off"]) == 0
    assert main(["tune-lm", "--config", config, "--lm-weights", "0.5,2", "--word-scores", "0"]) == 0
    tuned = yaml.safe_load((tone_run / "exp" / "decode.yaml").read_text())["decode"]
    assert tuned["lm_weight"] in (0.5, 2.0) and tuned["word_score"] == 0
    assert "best on dev" in capsys.readouterr().out
    from asr.decoding.decoders import DECODERS
    from asr.decoding.decoders import get_decoder
    assert get_decoder("beam_lm") is DECODERS["beam_lm"]  # asr benchmark finds the decoders


def test_tune_lm_trials_in_two_processes_equal_one(tone_run):
    from asr.data.store import open_store
    from asr.decoding import tuning
    from asr.source import recipe_source
    config = str(tone_run / "exp" / "config.yaml")
    if not (tone_run / "lm" / "lm.bin").is_file():
        assert main(["lm", "build", "--config", config, "lm.order=3", "lm.char_order=4"]) == 0
    source = recipe_source(config, [], decoder="beam_lm")
    cfg, base = source.config, source.decode
    model, vocab, _, _ = source.network()
    store = open_store(cfg.data.root, cfg.data.dev_split, cfg.features)
    outputs = tuning.split_outputs(model, store, torch.device("cpu"))
    refs = [e.get("text", "") for e in store.entries]
    space = [(0.5, 0.0), (2.0, -1.0), (1.0, 1.0)]
    seen = []
    forked = tuning.tune(outputs, refs, vocab, base, space, on_trial=lambda t, s: seen.append(t), nj=2)
    assert forked == tuning.tune(outputs, refs, vocab, base, space, nj=1) == seen
    assert [(t["lm_weight"], t["word_score"]) for t in forked] == space
