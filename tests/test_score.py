import json

import jiwer
import numpy as np
import pytest

from asr.scoring.compare import mapsswe_segments
from asr.scoring.readers import read_transcripts
from asr.scoring.score import format_alignment, length_bin, score, score_files
from asr.scoring.tables import results_table, write_report


def test_score_hand_computed():
    refs = {"u1": "the cat sat", "u2": "on the mat", "u3": "hello"}
    hyps = {"u1": "the cat sat", "u2": "on a mat here"}  # u3 missing -> empty
    s = score(refs, hyps)
    # u2: 1 sub + 1 ins; u3: 1 del -> 3 errors / 7 words
    assert s["words"] == 7 and (s["sub"], s["del"], s["ins"]) == (1, 1, 1)
    assert s["wer"] == pytest.approx(100 * 3 / 7)
    assert s["hits"] == 5 and s["errors"] == 3
    assert s["missing"] == 1 and s["extra"] == 0
    assert s["ser"] == pytest.approx(100 * 2 / 3) and s["sent_errors"] == 2
    assert s["per_utt"][0]["id"] == "u2" and s["per_utt"][0]["errors"] == 2
    assert (s["per_utt"][0]["sub"], s["per_utt"][0]["ins"]) == (1, 1)
    assert s["confusions"] == {"sub": [["the", "a", 1]], "del": [["hello", 1]], "ins": [["here", 1]]}
    # CER is the same number jiwer computes
    assert s["cer"] == pytest.approx(100 * jiwer.cer(list(refs.values()), ["the cat sat", "on a mat here", ""]))


def test_score_cer_and_counts_by_hand():
    # a: "ab cd" -> "ab ce": 1 char sub, 1 word sub; b: "xyz" -> "": 3 char del, 1 word del
    s = score({"a": "ab cd", "b": "xyz"}, {"a": "ab ce", "b": ""})
    assert (s["sub"], s["del"], s["ins"], s["words"]) == (1, 1, 0, 3)
    assert s["wer"] == pytest.approx(200 / 3)
    assert (s["char_errors"], s["chars"]) == (4, 8) and s["cer"] == pytest.approx(50.0)
    assert s["ser"] == 100.0


def test_score_empty_reference_counts_insertions():
    s = score({"a": "", "b": "x y"}, {"a": "extra", "b": "x y"})
    assert s["ins"] == 1 and s["wer"] == pytest.approx(50.0)
    assert s["ser"] == 50.0
    empty = [g for g in s["by_length"] if g["name"] == "0 (empty)"][0]
    assert empty["utterances"] == 1 and empty["ins"] == 1 and empty["wer"] == float("inf")


def test_score_empty_references_and_hypotheses():
    s = score({"a": "", "b": "  "}, {"a": "", "b": ""})
    assert (s["words"], s["errors"], s["wer"], s["cer"], s["ser"]) == (0, 0, 0.0, 0.0, 0.0)
    assert s["wer_lo"] == s["wer_hi"] == 0.0
    s = score({"a": ""}, {"a": "hi there"})
    assert s["ins"] == 2 and s["wer"] == float("inf") and s["ser"] == 100.0
    s = score({"a": "one two", "b": "three"}, {})
    assert (s["del"], s["wer"], s["missing"]) == (3, 100.0, 2)
    with pytest.raises(ValueError, match="no reference"):
        score({}, {"a": "x"})


def test_score_extra_hyps_and_whitespace_and_normalizer():
    s = score({"a": "Hello,  World"}, {"a": " hello world ", "zzz": "ignored"})
    assert s["extra"] == 1 and s["errors"] == 2  # case and comma count without normalisation
    from asr.text.normalize import Normalizer
    s = score({"a": "Hello,  World"}, {"a": " hello world "}, normalizer=Normalizer.parse("lower,punct"))
    assert s["errors"] == 0 and s["normalization"] == "lower, punct"


def test_breakdowns_by_speaker_subset_length():
    refs = {"s1-1": "a b c d", "s1-2": "a b", "s2-1": "a b c d e f", "s2-2": "x"}
    hyps = {"s1-1": "a b c d", "s1-2": "a", "s2-1": "a b c d e f", "s2-2": "y"}
    s = score(refs, hyps, speakers={k: k[:2] for k in refs},
              subsets={"s1-1": "clean", "s1-2": "clean", "s2-1": "noisy", "s2-2": "noisy"})
    spk = {g["name"]: g for g in s["by_speaker"]}
    assert spk["s1"]["wer"] == pytest.approx(100 / 6) and spk["s1"]["del"] == 1
    assert spk["s2"]["wer"] == pytest.approx(100 / 7) and spk["s2"]["sub"] == 1
    assert {g["name"] for g in s["by_subset"]} == {"clean", "noisy"}
    lengths = {g["name"]: g["utterances"] for g in s["by_length"]}
    assert lengths == {"1-4": 3, "5-9": 1}
    assert [length_bin(n) for n in (0, 1, 4, 5, 49, 50, 500)] == \
        ["0 (empty)", "1-4", "1-4", "5-9", "30-49", "50+", "50+"]
    with pytest.raises(ValueError, match="speakers"):
        score(refs, hyps, by_speaker=True)


def test_sclite_style_alignment():
    s = score({"u": "on the mat"}, {"u": "on a mat here"})
    text = format_alignment(s, 0)
    lines = text.splitlines()
    assert lines[0] == "id: (u)" and lines[1] == "Scores: (#C #S #D #I) 2 1 0 1"
    assert lines[2].split() == ["REF:", "on", "the", "mat", "****"]
    assert lines[3].split() == ["HYP:", "on", "a", "mat", "here"]
    assert lines[4].split() == ["Eval:", "S", "I"]
    # columns line up
    assert lines[2].index("the") == lines[3].index("a") == lines[4].index("S")


def test_mapsswe_segments_by_hand():
    ref = {"u": "a b c d e f g"}
    a = score(ref, {"u": "x b c d e f y"})  # errors on the first and the last word
    b = score(ref, {"u": "a b c d e f g"})
    sa, sb = mapsswe_segments(a, b)
    assert sa.tolist() == [1, 1] and sb.tolist() == [0, 0]  # cut by the 5 words both get right
    ref = {"u": "a b c d e"}
    sa, sb = mapsswe_segments(score(ref, {"u": "x b y d e"}), score(ref, {"u": "a b c d e"}))
    assert sa.tolist() == [2] and sb.tolist() == [0]  # one correct word between errors: no cut
    sa, sb = mapsswe_segments(score(ref, {"u": "a b c uh d e"}), score(ref, {"u": "a b c d e"}))
    assert sa.tolist() == [1] and sb.tolist() == [0]  # an insertion breaks a clean run
    sa, sb = mapsswe_segments(score(ref, {"u": "a b c uh d e"}), score(ref, {"u": "a b c d e"}),
                              mode="utterance")
    assert sa.tolist() == [1] and sb.tolist() == [0]
    two = {"u": "a b", "v": ""}
    sa, sb = mapsswe_segments(score(two, {"u": "a", "v": "oh"}), score(two, {"u": "a b", "v": ""}))
    assert sorted(sa.tolist()) == [1, 1] and sb.tolist() == [0, 0]  # utterances never merge


def test_score_files_and_report(tmp_path):
    ref = tmp_path / "ref.jsonl"
    hyp = tmp_path / "hyp.jsonl"
    ref.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in [("a", "one two"), ("b", "three")]))
    hyp.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in [("a", "one too"), ("b", "three")]))
    s = score_files(ref, hyp)
    assert s["wer"] == pytest.approx(100 / 3)
    text = write_report(tmp_path / "report.md", [{"split": "test", "decoder": "greedy", **s}])
    assert f"| test | greedy | 2 | 33.33 ± {s['wer_ci']:.2f} |" in text and "one too" in text
    assert "two → too (1)" in text
    hyp.write_text("{not json\n")
    with pytest.raises(ValueError, match="hyp.jsonl:1"):
        score_files(ref, hyp)


def test_results_table_with_checkpoint_and_rtf():
    s = score({"a": "x y"}, {"a": "x"})
    table = results_table([{"split": "test", "decoder": "greedy", "checkpoint": "best", "rtf": 0.0123, **s}])
    head, _, row = table.splitlines()
    assert "checkpoint" in head and "RTF" in head and "WER % ± 95% CI" in head
    assert row.startswith("| test | greedy | best | 1 | 50.00 ± ") and row.endswith("| 0.012 |")


def test_read_formats(tmp_path):
    (tmp_path / "ref.trn").write_text("hello world (spk1-utt1)\n\n(spk2_utt2)\nbye (utt3)\n")
    t = read_transcripts(tmp_path / "ref.trn")
    assert t.format == "trn" and t.texts == {"spk1-utt1": "hello world", "spk2_utt2": "", "utt3": "bye"}
    assert t.speakers == {"spk1-utt1": "spk1", "spk2_utt2": "spk2"}
    (tmp_path / "text").write_text("utt1 hello world\nutt2\nutt3  bye  now\n")
    (tmp_path / "utt2spk").write_text("utt1 A\nutt2 B\nutt3 A\n")
    t = read_transcripts(tmp_path / "text", utt2spk=tmp_path / "utt2spk")
    assert t.format == "kaldi" and t.texts == {"utt1": "hello world", "utt2": "", "utt3": "bye  now"}
    assert t.speakers == {"utt1": "A", "utt2": "B", "utt3": "A"}
    (tmp_path / "m.jsonl").write_text(
        json.dumps({"audio_filepath": "wavs/x1.wav", "text": "a", "speaker": "S", "subset": "clean",
                    "duration": 1.5}) + "\n" + json.dumps({"id": "x2", "text": None}) + "\n")
    t = read_transcripts(tmp_path / "m.jsonl")
    assert t.texts == {"x1": "a", "x2": ""} and t.speakers == {"x1": "S"}
    assert t.subsets == {"x1": "clean"} and t.durations == {"x1": 1.5}
    # sniffed without a telling extension
    (tmp_path / "hyp.txt").write_text("hello (spk1-utt1)\n")
    assert read_transcripts(tmp_path / "hyp.txt").format == "trn"
    (tmp_path / "hyp2.txt").write_text('{"id": "u", "text": "x"}\n')
    assert read_transcripts(tmp_path / "hyp2.txt").texts == {"u": "x"}
    (tmp_path / "dup").write_text("u a\nu b\n")
    with pytest.raises(ValueError, match="dup:2: duplicate"):
        read_transcripts(tmp_path / "dup")
    (tmp_path / "bad.trn").write_text("no id here\n")
    with pytest.raises(ValueError, match="bad.trn:1"):
        read_transcripts(tmp_path / "bad.trn")
    # mixed formats score together
    s = score_files(tmp_path / "ref.trn", tmp_path / "hyp.txt")
    assert s["utterances"] == 3 and s["del"] == 2 and s["sub"] == 0 and s["missing"] == 2


def test_many_utterances_vectorised():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(50)]
    refs, hyps = {}, {}
    for i in range(3000):
        r = list(rng.choice(words, size=rng.integers(0, 12)))
        h = [w if rng.random() > 0.2 else "zz" for w in r]
        refs[f"u{i}"], hyps[f"u{i}"] = " ".join(r), " ".join(h)
    s = score(refs, hyps, n_boot=200)
    ref_l, hyp_l = list(refs.values()), list(hyps.values())
    keep = [k for k, r in enumerate(ref_l) if r]  # jiwer.wer needs non-empty references overall
    assert s["wer"] == pytest.approx(100 * jiwer.wer([ref_l[k] for k in keep], [hyp_l[k] for k in keep]))
    assert s["wer_lo"] < s["wer"] < s["wer_hi"]
    assert sum(u["errors"] for u in s["per_utt"]) == s["errors"] == s["sub"]
