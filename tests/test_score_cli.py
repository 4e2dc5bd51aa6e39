"""`asr score` and `asr compare` end to end on generated files."""

import json
from html.parser import HTMLParser

import pytest

from asr.cli import main
from asr.bench.score import make_example


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_score_positional_kaldi_and_trn(tmp_path, capsys):
    (tmp_path / "text").write_text("u1 THE CAT SAT\nu2 ON THE MAT\n")
    (tmp_path / "hyp.trn").write_text("the cat sat (u1)\non a mat (u2)\n")
    assert main(["score", str(tmp_path / "text"), str(tmp_path / "hyp.trn"), "--normalize", "lower"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("WER 16.67 % (95% CI [") and "±" not in out.splitlines()[0]  # the interval
    assert "warning: 2 utterance(s) are too few for a meaningful interval" in out
    assert "1 sub, 0 del, 0 ins of 6" in out
    assert "the→a (1)" in out and "SER 50.0 %" in out
    # the --ref/--hyp form says the same
    assert main(["score", "--ref", str(tmp_path / "text"), "--hyp", str(tmp_path / "hyp.trn"),
                 "--normalize", "lower"]) == 0
    assert capsys.readouterr().out == out
    assert main(["score", str(tmp_path / "text")]) == 2
    assert "expected REF HYP" in capsys.readouterr().err
    assert main(["score", "train.lr=1"]) == 2


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def test_score_report_files(tmp_path, capsys):
    ref = _jsonl(tmp_path / "ref.jsonl", [
        {"id": "a-1", "text": "<b>bold</b> words here", "speaker": "a", "subset": "x"},
        {"id": "b-1", "text": "some more words", "speaker": "b", "subset": "y"},
        {"id": "b-2", "text": "", "speaker": "b", "subset": "y"}])
    hyp = _jsonl(tmp_path / "hyp.jsonl", [{"id": "a-1", "text": "<b>bold</b> word here"},
                                          {"id": "b-1", "text": "some words"}, {"id": "b-2", "text": "oh"}])
    out = tmp_path / "report"
    assert main(["score", str(ref), str(hyp), "--out", str(out), "--by-speaker", "--n-boot", "200"]) == 0
    assert "resamples of 2 speakers" in capsys.readouterr().out
    for name in ("report.md", "report.html", "alignments.txt", "scores.json", "per_utt.jsonl"):
        assert (out / name).stat().st_size > 0, name
    md = (out / "report.md").read_text()
    assert "## By speaker" in md and "## By subset" in md and "## By utterance length" in md
    assert "| words | word | 1 |" in md and "Scores: (#C #S #D #I)" in md
    page = (out / "report.html").read_text()
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold" not in page
    p = _Collect()
    p.feed(page)
    assert "b" not in p.tags and "table" in p.tags
    scores = json.loads((out / "scores.json").read_text())
    assert scores["words"] == 6 and scores["ins"] == 1 and scores["ci"]["unit"] == "speaker"
    assert len((out / "per_utt.jsonl").read_text().splitlines()) == 3
    pytest.importorskip("matplotlib")
    for png in ("wer_by_length.png", "top_confusions.png", "wer_by_speaker.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
        assert f"![{png}]({png})" in md
    assert page.count("data:image/png;base64,") == 3


def test_score_recipe_config(tmp_path, capsys):
    root, exp = tmp_path / "data", tmp_path / "exp"
    (root / "manifests").mkdir(parents=True)
    _jsonl(root / "manifests" / "test.jsonl", [{"id": "u1", "text": "one two three", "speaker": "s"}, {"id": "u2", "text": "four", "speaker": "s"}])
    (exp / "decode_test_greedy").mkdir(parents=True)
    _jsonl(exp / "decode_test_greedy" / "hyp.jsonl", [{"id": "u1", "text": "one two tree"}, {"id": "u2", "text": "four"}])
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{root: {root}, test_splits: [test]}}\ntrain: {{exp_dir: {exp}}}\n")
    assert main(["score", "--config", str(cfg), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "| test | greedy | 2 | 25.00 ± " in out
    report = (exp / "report.md").read_text()
    assert "WER % ± 95% CI" in report and "three → tree (1)" in report
    assert (exp / "decode_test_greedy" / "report.html").exists()


def test_compare_real_difference_and_null(tmp_path, capsys):
    p = make_example(tmp_path, n=300)
    assert main(["compare", str(p["ref"]), str(p["a"]), str(p["b"]), "--normalize", "lower,punct",
                 "--out", str(tmp_path / "cmp"), "--names", "old,new"]) == 0
    out = capsys.readouterr().out
    assert "paired bootstrap" in out and "MAPSSWE (sclite segments" in out
    assert "verdict: new is better than old (p<0.05, both tests agree)" in out
    c = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert c["delta"] < 0 and c["paired_bootstrap"]["hi"] < 0 and c["mapsswe"]["p_value"] < 0.05
    assert c["a"]["wer"] > c["b"]["wer"] and (tmp_path / "cmp" / "compare.md").exists()
    # reversed: B is worse
    assert main(["compare", str(p["trn"]), str(p["b"]), str(p["a"]), "--normalize", "lower,punct",
                 "--mapsswe-segments", "utterance"]) == 0
    assert "verdict: B is worse than A" in capsys.readouterr().out

    # a null: B makes exactly A's errors per utterance, on other words
    ref = _jsonl(tmp_path / "r.jsonl", [{"id": f"u{i}", "text": "a b c d e f g h"} for i in range(60)])
    hyp_a = _jsonl(tmp_path / "ha.jsonl", [{"id": f"u{i}", "text": "x b c d e f g h" if i % 2 else "a b c d e f g h"}
                                           for i in range(60)])
    hyp_b = _jsonl(tmp_path / "hb.jsonl", [{"id": f"u{i}", "text": "a b c d e f g y" if i % 2 else "a b c d e f g h"}
                                           for i in range(60)])
    assert main(["compare", str(ref), str(hyp_a), str(hyp_b)]) == 0
    out = capsys.readouterr().out
    assert "B - A: +0.00 WER points" in out
    assert "verdict: A and B are not distinguishable (neither test finds a difference" in out
