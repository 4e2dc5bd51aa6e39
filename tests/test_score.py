import json

import pytest

from asr.score import score, score_files, write_report


def test_score_hand_computed():
    refs = {"u1": "the cat sat", "u2": "on the mat", "u3": "hello"}
    hyps = {"u1": "the cat sat", "u2": "on a mat here"}  # u3 missing -> empty
    s = score(refs, hyps)
    # u2: 1 sub + 1 ins; u3: 1 del -> 3 errors / 7 words
    assert s["words"] == 7 and (s["sub"], s["del"], s["ins"]) == (1, 1, 1)
    assert s["wer"] == pytest.approx(100 * 3 / 7)
    assert s["missing"] == 1
    assert s["per_utt"][0]["id"] == "u2" and s["per_utt"][0]["errors"] == 2
    # CER: u2 "on the mat" vs "on a mat here" and u3 fully deleted (5 chars)
    assert 0 < s["cer"] < 100


def test_score_empty_reference_counts_insertions():
    s = score({"a": "", "b": "x y"}, {"a": "extra", "b": "x y"})
    assert s["ins"] == 1 and s["wer"] == pytest.approx(50.0)


def test_score_files_and_report(tmp_path):
    ref = tmp_path / "ref.jsonl"
    hyp = tmp_path / "hyp.jsonl"
    ref.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in [("a", "one two"), ("b", "three")]))
    hyp.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in [("a", "one too"), ("b", "three")]))
    s = score_files(ref, hyp)
    assert s["wer"] == pytest.approx(100 / 3)
    text = write_report(tmp_path / "report.md", [{"split": "test", "decoder": "greedy", **s}])
    assert "| test | greedy | 2 | 33.33 |" in text and "one too" in text
    hyp.write_text("{not json\n")
    with pytest.raises(ValueError, match="hyp.jsonl:1"):
        score_files(ref, hyp)
