"""KenLM language models: lmplz/build_binary on a tiny text, lexicon, character LM, the CLI."""

import json

import pytest

from asr.cli import main
from asr.text.vocab import CharVocab
from asr.decoding.lm import LmError, arpa_words, build_lm, kenlm_program, prepare_text, read_lexicon_words

TINY_TEXT = """The cat sat on the mat.
the cat sat on the hat
A cat sat, and the cat ran!
the dog sat on the log
It's 5 o'clock: the cat sat.
"""


def need_kenlm():
    try:
        kenlm_program("lmplz")
        kenlm_program("build_binary")
    except LmError as e:
        pytest.fail(str(e))


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    need_kenlm()
    d = tmp_path_factory.mktemp("lm")
    (d / "text.raw").write_text(TINY_TEXT)
    summary = build_lm(d / "text.raw", d / "lm", order=3, char_order=4)
    return d / "lm", summary


def test_build_lm_on_a_tiny_text(tiny_lm):
    out, s = tiny_lm
    for name in ("text.txt", "lm.arpa", "lm.bin", "lexicon.txt", "char.arpa", "char.bin", "lm.json"):
        assert (out / name).is_file(), name
    assert s["sentences"] == 5 and s["order"] == 3
    assert "ngram 3=" in (out / "lm.arpa").read_text()
    words = set(arpa_words(out / "lm.arpa"))
    assert {"cat", "sat", "it's", "five", "o'clock"} <= words and "<unk>" not in words
    assert set(read_lexicon_words(out / "lexicon.txt")) == words
    assert "cat\tc a t |" in (out / "lexicon.txt").read_text().splitlines()
    assert (out / "char.txt").read_text().splitlines()[0] == "t h e | c a t | s a t | o n | t h e | m a t"
    assert json.loads((out / "lm.json").read_text())["lexicon_words"] == len(words)


def test_prepare_text_normalises_and_drops_foreign_lines(tmp_path):
    (tmp_path / "a.txt").write_text("Hello, World!\n\nnaïve café\n中文\n")
    stats = prepare_text(tmp_path / "a.txt", tmp_path / "b.txt")
    assert (tmp_path / "b.txt").read_text() == "hello world\nnaive cafe\n"
    assert stats == {"sentences": 2, "words": 4, "dropped": 0}
    no_w = CharVocab([t for t in CharVocab().tokens if t != "w"])  # a model without 'w'
    stats = prepare_text(tmp_path / "a.txt", tmp_path / "c.txt", no_w)
    assert (tmp_path / "c.txt").read_text() == "naive cafe\n" and stats["dropped"] == 1


def test_order_out_of_range_and_empty_text_are_clear_errors(tmp_path):
    (tmp_path / "t.txt").write_text("a b c\n")
    with pytest.raises(LmError, match="order must be 2..6"):
        build_lm(tmp_path / "t.txt", tmp_path / "lm", order=9)
    (tmp_path / "empty.txt").write_text("\n!!!\n")
    with pytest.raises(LmError, match="no usable sentences"):
        build_lm(tmp_path / "empty.txt", tmp_path / "lm2")


def test_lm_build_cli(tmp_path, capsys):
    need_kenlm()
    (tmp_path / "t.txt").write_text(TINY_TEXT)
    rc = main(["lm", "build", "--text", str(tmp_path / "t.txt"), "--out", str(tmp_path / "lm"), "lm.order=2"])
    assert rc == 0
    assert "2-gram from 5 sentences" in capsys.readouterr().out
    assert (tmp_path / "lm" / "lm.bin").is_file()


def test_tiny_vocabulary_lm_loads(tmp_path):
    """lmplz gives <s> a -inf back-off when every word starts a sentence; it is made finite."""
    need_kenlm()
    (tmp_path / "t.txt").write_text("ab cd\ncd ab\nab\ncd\n")
    s = build_lm(tmp_path / "t.txt", tmp_path / "lm", order=3)
    assert "-inf" not in (tmp_path / "lm" / "lm.arpa").read_text()
    assert (tmp_path / "lm" / "lm.bin").is_file() and s["lexicon_words"] == 2


def _unigram_logprob(arpa, word: str) -> float:
    for line in arpa.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1] == word:
            return float(parts[0])
    raise AssertionError(f"{word} not in {arpa}")


def test_training_transcripts_are_count_merged(tmp_path, capsys):
    """lm.transcript_times adds the training split's unique transcripts that many times to
    the broad text, so the acoustic training's domain weighs more in the same estimate."""
    need_kenlm()
    (tmp_path / "broad.txt").write_text(TINY_TEXT)
    manifests = tmp_path / "data" / "manifests"
    manifests.mkdir(parents=True)
    lines = ["the parrot sat on the mat", "the parrot sat on the mat", "a parrot ran"]
    (manifests / "train_mix.jsonl").write_text("".join(
        json.dumps({"id": f"u{i}", "audio_filepath": f"u{i}.wav", "duration": 1.0, "text": t}) + "\n"
        for i, t in enumerate(lines)))
    def build(out: str, times: int) -> int:
        return main(["lm", "build", "--text", str(tmp_path / "broad.txt"), "--out", str(tmp_path / out),
                     f"data.root={tmp_path / 'data'}", "data.train_split=train_mix", "lm.order=2",
                     f"lm.transcript_times={times}"])
    assert build("once", 1) == 0 and build("five", 5) == 0
    assert "2-gram from 15 sentences" in capsys.readouterr().out  # 5 broad + 2 unique x 5
    text = (tmp_path / "five" / "text.txt").read_text().splitlines()
    assert text[:5] == (tmp_path / "once" / "text.txt").read_text().splitlines()[:5]
    assert text.count("the parrot sat on the mat") == 5 and text.count("a parrot ran") == 5
    assert (_unigram_logprob(tmp_path / "five" / "lm.arpa", "parrot")
            > _unigram_logprob(tmp_path / "once" / "lm.arpa", "parrot"))
    weighted = json.loads((tmp_path / "five" / "lm.json").read_text())["weighted"]
    assert list(weighted.values()) == [5]


def test_transcript_times_without_a_training_manifest_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "t.txt").write_text(TINY_TEXT)
    assert main(["lm", "build", "--text", str(tmp_path / "t.txt"), "--out", str(tmp_path / "lm"),
                 f"data.root={tmp_path}", "data.train_split=train", "lm.transcript_times=2"]) == 2
    assert "train.jsonl does not exist" in capsys.readouterr().err
