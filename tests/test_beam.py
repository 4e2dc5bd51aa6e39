"""Beam search on hand-made network outputs: lexicon-free / lexicon, with and without an LM,
hotwords, N-best, word timestamps and the DECODERS registry."""

import dataclasses

import pytest
import torch

from asr.decoding.align import align_text, path_words
from asr.decoding.beam import BeamOptions, BeamSearch, PhraseTrie, read_hotwords
from asr.config import DecodeConfig
from asr.decoding.decoders import DECODERS, greedy_hyps
from asr.text.vocab import CharVocab

from test_lm import tiny_lm  # noqa: F401  (module-scoped fixture)

V = CharVocab()
FRAME = 0.04


def emissions(frames, floor=1e-4):
    """(1, T, V) log-probs: frames is a list of {token: prob}; leftover mass goes to blank."""
    p = torch.full((len(frames), len(V)), floor)
    for t, f in enumerate(frames):
        for tok, prob in f.items():
            p[t, V.index[tok]] = prob
        p[t, 0] = max(1 - sum(f.values()), floor)
    return (p / p.sum(-1, keepdim=True)).log()[None]


def spoken(*words):
    """Frames for words: one blank frame, then per character a frame (prob 0.9 unless a dict of
    alternatives is given) and a blank, a ' ' frame between words, a final blank."""
    frames = [{}]
    for k, w in enumerate(words):
        if k:
            frames.append({" ": 0.9})
        for c in w:
            frames += [c if isinstance(c, dict) else {c: 0.9}, {}]
    return frames + [{}]


# "c?t sat": the vowel of the first word is 'a' (0.5) or 'u' (0.4) to the network.
AMBIGUOUS = emissions(spoken(["c", {"a": 0.5, "u": 0.4}, "t"], "sat"))
LEN = torch.tensor([AMBIGUOUS.shape[1]])


@pytest.fixture
def lexicon(tmp_path):
    path = tmp_path / "lexicon.txt"
    path.write_text("cat\tc a t |\ncut\tc u t |\nsat\ts a t |\nmat\tm a t |\n")
    return path


def text(decoder, lp=AMBIGUOUS, lengths=LEN):
    return decoder(lp, lengths)[0]["text"]


def test_lexicon_free_beam_matches_greedy_on_clear_input():
    lp = emissions(spoken("the", "cat"))
    n = torch.tensor([lp.shape[1]])
    assert text(BeamSearch(V), lp, n) == greedy_hyps(lp, n, V)[0]["text"] == "the cat"
    assert text(BeamSearch(V)) == "cat sat"


def test_lexicon_constrains_the_output(lexicon):
    # the network prefers "cst" (0.5) to "cat" (0.4): lexicon-free says cst, the lexicon cat
    lp = emissions(spoken(["c", {"s": 0.5, "a": 0.4}, "t"], "sat"))
    n = torch.tensor([lp.shape[1]])
    assert text(BeamSearch(V), lp, n) == "cst sat"
    assert text(BeamSearch(V, lexicon=lexicon), lp, n) == "cat sat"


def test_the_language_model_overrides_a_weak_acoustic_preference(tiny_lm):  # noqa: F811
    lm_dir, _ = tiny_lm
    lp = emissions(spoken("the", ["c", {"u": 0.5, "a": 0.4}, "t"], "sat"))
    n = torch.tensor([lp.shape[1]])
    assert greedy_hyps(lp, n, V)[0]["text"] == "the cut sat"
    with_lm = BeamSearch(V, lm=lm_dir / "lm.bin", lexicon=lm_dir / "lexicon.txt",
                         options=BeamOptions(lm_weight=1.0))
    assert text(with_lm, lp, n) == "the cat sat"
    # lexicon-free search with the character LM does the same
    char_lm = BeamSearch(V, lm=lm_dir / "char.bin", options=BeamOptions(lm_weight=1.0))
    assert text(char_lm, lp, n) == "the cat sat"
    # the lexicon alone (no LM) leaves the acoustic choice: "cut" is not in this LM's lexicon,
    # so it must pick a lexicon word
    assert text(BeamSearch(V, lexicon=lm_dir / "lexicon.txt"), lp, n) == "the cat sat"


def test_a_quantised_trie_lm_decodes_as_the_probing_one(tmp_path):
    """lm.binary=trie-q8 (build_binary -q 8 -b 8 trie) loads and decodes the same words."""
    from asr.decoding.lm import build_lm
    from test_lm import TINY_TEXT, need_kenlm
    need_kenlm()
    (tmp_path / "t.txt").write_text(TINY_TEXT * 20)
    for kind in ("probing", "trie-q8"):
        s = build_lm(tmp_path / "t.txt", tmp_path / kind, order=3, binary=kind)
        assert s["binary_format"] == kind
        lp = emissions(spoken("the", ["c", {"u": 0.5, "a": 0.4}, "t"], "sat"))
        search = BeamSearch(V, lm=tmp_path / kind / "lm.bin", lexicon=tmp_path / kind / "lexicon.txt",
                            options=BeamOptions(lm_weight=1.0))
        assert text(search, lp, torch.tensor([lp.shape[1]])) == "the cat sat", kind
    # another format (the size is the benchmark's: on this tiny text the trie's fixed part dominates)
    assert (tmp_path / "trie-q8" / "lm.bin").read_bytes() != (tmp_path / "probing" / "lm.bin").read_bytes()


def test_hotwords_change_the_result(lexicon, tiny_lm):  # noqa: F811
    assert text(BeamSearch(V)) == "cat sat"
    assert text(BeamSearch(V, hotwords=["cut"], hotword_weight=2.0)) == "cut sat"
    assert text(BeamSearch(V, hotwords=["cut"], hotword_weight=0.0)) == "cat sat"
    assert text(BeamSearch(V, lexicon=lexicon)) == "cat sat"
    assert text(BeamSearch(V, lexicon=lexicon, hotwords=["cut"], hotword_weight=2.0)) == "cut sat"
    # with the LM (which has never seen "cut": it is added to the lexicon for the hotword)
    lm_dir, _ = tiny_lm
    lp = emissions(spoken("the", ["c", {"a": 0.5, "u": 0.4}, "t"], "sat"))
    n = torch.tensor([lp.shape[1]])
    args = dict(lm=lm_dir / "lm.bin", lexicon=lm_dir / "lexicon.txt")
    assert text(BeamSearch(V, **args), lp, n) == "the cat sat"
    assert text(BeamSearch(V, **args, hotwords=["cut sat"], hotword_weight=4.0), lp, n) == "the cut sat"


def test_a_phrase_earns_its_bonus_only_when_complete():
    trie = PhraseTrie([[1, 2]])
    node, total, pending = 0, 0.0, 0.0
    for unit in (1, 3):  # starts the phrase, then leaves it: the bonus is refunded
        node, delta, pending = trie.step(node, unit, 1.0, pending)
        total += delta
    assert total == 0.0 and node == 0
    node, total, pending = 0, 0.0, 0.0
    for unit in (1, 2):
        node, delta, pending = trie.step(node, unit, 1.0, pending)
        total += delta
    assert total == 2.0 and pending == 0.0


def test_read_hotwords(tmp_path):
    (tmp_path / "h.txt").write_text("Dr. Who  # a comment\n\nTARDIS\n")
    assert read_hotwords(["tardis", "Gallifrey"], tmp_path / "h.txt") == ["tardis", "gallifrey", "dr who"]


def test_nbest():
    out = BeamSearch(V, options=BeamOptions(nbest=3))(AMBIGUOUS, LEN)[0]
    assert [h["text"] for h in out["nbest"]][:2] == ["cat sat", "cut sat"]
    scores = [h["score"] for h in out["nbest"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 3


def test_word_times_and_confidences(lexicon):
    lp = emissions(spoken("cat", "sat"))  # c@1 a@3 t@5 ' '@7 s@8 a@10 t@12, 15 frames
    n = torch.tensor([lp.shape[1]])
    expected = [("cat", 1 * FRAME, 6 * FRAME), ("sat", 8 * FRAME, 13 * FRAME)]
    for hyp in (greedy_hyps(lp, n, V, frame_s=FRAME)[0], BeamSearch(V)(lp, n, FRAME)[0],
                BeamSearch(V, lexicon=lexicon)(lp, n, FRAME)[0]):
        got = [(w["word"], w["start"], w["end"]) for w in hyp["words"]]
        assert got == [(w, pytest.approx(s), pytest.approx(e)) for w, s, e in expected]
        assert all(0.85 < w["conf"] <= 1.0 for w in hyp["words"])
    aligned = align_text(lp[0], "cat sat", V, FRAME, offset_s=10.0)
    assert [(w["word"], w["start"]) for w in aligned] == [("cat", pytest.approx(10.04)),
                                                          ("sat", pytest.approx(10.32))]
    # an uncertain word gets a lower confidence
    words = greedy_hyps(AMBIGUOUS, LEN, V)[0]["words"]
    assert words[0]["conf"] < words[1]["conf"]


def test_path_words_without_a_separator_gives_units():
    class Phones(CharVocab):
        def __init__(self):
            super().__init__(["<blank>", "sh", "iy"])
    v = Phones()
    words = path_words([0, 1, 1, 0, 2, 0], torch.zeros(6, 3), v, 0.02)
    assert [(w["word"], w["start"], w["end"]) for w in words] == [("sh", 0.02, 0.06), ("iy", 0.08, 0.1)]


def test_decoders_registry_batch_form(lexicon, tmp_path):
    cfg = DecodeConfig(lexicon_path=str(lexicon), hotwords=["cut"], hotword_weight=2.0)
    assert DECODERS["greedy"](AMBIGUOUS, LEN, V)[0]["text"] == "cat sat"
    assert DECODERS["beam"](AMBIGUOUS, LEN, V, cfg)[0]["text"] == "cut sat"
    lexicon_beam = dataclasses.replace(cfg, lexicon="on", hotwords=[])
    assert DECODERS["beam"](AMBIGUOUS, LEN, V, lexicon_beam)[0]["text"] == "cat sat"
    with pytest.raises(FileNotFoundError, match="make lm"):
        DECODERS["beam_lm"](AMBIGUOUS, LEN, V, DecodeConfig(lm_path=str(tmp_path / "none.bin"),
                                                           lexicon_path=str(lexicon)))
    with pytest.raises(ValueError, match="lexicon must be"):
        DECODERS["beam"](AMBIGUOUS, LEN, V, DecodeConfig(lexicon="maybe"))
