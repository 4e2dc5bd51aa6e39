"""Sentencepiece subword units (data.units=bpe / unigram): the vocabulary, its model inside
checkpoints, word times, beam search with a lexicon spelled in pieces and a KenLM model, and a
few training steps end to end."""

import pickle
import random

import pytest
import torch

from asr.decoding.align import path_words
from asr.decoding.beam import BeamOptions, BeamSearch
from asr.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from asr.config import DataConfig, DecodeConfig
from asr.decoding.decoders import DECODERS, decode_store, greedy_hyps
from asr.decoding.lm import build_lm, read_lexicon, write_lexicon
from asr.text.vocab import CharVocab
from asr.text.units import build_vocab, units_state, vocab_from_checkpoint
from asr.text.vocab import SentencePieceVocab, make_vocab, train_sentencepiece

from conftest import small_config
from test_lm import need_kenlm

WORDS = ("the a cat cut sat on in mat hat dog log ran we they it rope fish swim river under "
         "over little big red green house garden tree bird sing morning evening").split()
LM_TEXT = """the cat sat on the mat
the cat sat in the garden
the cat sat on the big mat
a cat sat in the morning
the dog sat on the log
we cut the rope in the evening
they cut the green tree
"""


@pytest.fixture(scope="module")
def corpus_text(tmp_path_factory):
    """A few hundred generated sentences (one a line) to train sentencepiece models on."""
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) for _ in range(400)]
    path = tmp_path_factory.mktemp("text") / "train_text.txt"
    path.write_text("\n".join(lines) + "\n" + LM_TEXT)
    return path


@pytest.fixture(scope="module", params=["bpe", "unigram"])
def vocab(request, corpus_text):
    path = train_sentencepiece(corpus_text, corpus_text.with_name(f"{request.param}.model"),
                               request.param, 48)
    return SentencePieceVocab.from_file(path, request.param)


def test_training_is_deterministic_and_needs_no_bos_eos(corpus_text, tmp_path):
    for kind in ("bpe", "unigram"):
        a = train_sentencepiece(corpus_text, tmp_path / f"a_{kind}.model", kind, 48).read_bytes()
        b = train_sentencepiece(corpus_text, tmp_path / f"b_{kind}.model", kind, 48).read_bytes()
        assert a == b, kind
        v = SentencePieceVocab(a, kind)
        assert v.tokens[:2] == ["<blank>", "<unk>"] and "<s>" not in v.tokens
        assert 30 < len(v) <= 49 and not list(tmp_path.glob(".*tmp*"))
    with pytest.raises(ValueError, match="bpe or unigram"):
        train_sentencepiece(corpus_text, tmp_path / "x.model", "char", 48)


def test_round_trip_blank_and_coverage(vocab):
    assert vocab.blank == 0 and vocab.tokens[0] == vocab.BLANK == "<blank>"
    text = "the little bird sat on the garden tree in the morning"
    ids = vocab.encode(text)
    assert 0 not in ids and 1 not in ids  # neither blank nor <unk>
    assert vocab.decode(ids) == text
    assert vocab.decode([0, *ids[:2], 0]) == vocab.decode(ids[:2])
    assert [vocab.tokens[i] for i in ids] == vocab.pieces(text)
    assert all(len(vocab.tokens[i]) >= 1 for i in ids) and vocab.pieces("the")[0].startswith("\u2581")
    assert vocab.covers(text) and not vocab.covers("the zebra")  # no 'z' in the training text
    with pytest.raises(ValueError, match="'z'"):
        vocab.encode("the zebra")
    assert pickle.loads(pickle.dumps(vocab)) == vocab  # DataLoader workers


def test_checkpoint_round_trip_with_weights_only(vocab, tmp_path):
    state = {"vocab": vocab.tokens, **units_state(vocab), "config": {"data": {"units": vocab.kind}}}
    assert state["units_model"].dtype == torch.uint8
    save_checkpoint(state, tmp_path / "c.pt")
    back = vocab_from_checkpoint(load_checkpoint(tmp_path / "c.pt"))  # torch.load(weights_only=True)
    assert isinstance(back, SentencePieceVocab) and back == vocab and back.kind == vocab.kind
    assert back.encode("the cat sat") == vocab.encode("the cat sat")
    # characters and phones keep their old checkpoints (no units_model)
    assert type(vocab_from_checkpoint({"vocab": CharVocab().tokens})) is CharVocab
    assert units_state(CharVocab()) == {}
    assert make_vocab("bpe", vocab.tokens, model_proto=vocab.model_proto) == vocab
    with pytest.raises(ValueError, match="sentencepiece model"):
        make_vocab("unigram")
    with pytest.raises(ValueError, match="bpe, unigram"):
        make_vocab("wordpiece")


def frames_for(vocab, *words):
    """(1, T, V) log-probs: per piece a frame (0.9) then a blank frame. A word given as a tuple
    (preferred, other) is ambiguous: the pieces they share get 0.9, where they differ `other`'s
    piece gets 0.5 and `preferred`'s 0.4 (a piece only one of them has: 0.6 / 0.4)."""
    frames = [{}]
    for w in words:
        a, b = (vocab.pieces(w[0]), vocab.pieces(w[1])) if isinstance(w, tuple) else (vocab.pieces(w),) * 2
        for k in range(max(len(a), len(b))):
            pa, pb = (a[k] if k < len(a) else None), (b[k] if k < len(b) else None)
            if pa == pb:
                frames.append({pa: 0.9})
            else:
                frames.append({**({pa: 0.4} if pa else {}), **({pb: 0.5 if pa else 0.6} if pb else {})})
            frames.append({})
    p = torch.full((len(frames), len(vocab)), 1e-4)
    for t, f in enumerate(frames):
        for piece, prob in f.items():
            p[t, vocab.index[piece]] = prob
        p[t, 0] = max(1 - sum(f.values()), 1e-4)
    lp = (p / p.sum(-1, keepdim=True)).log()[None]
    return lp, torch.tensor([lp.shape[1]])


def test_word_times_start_at_word_pieces(vocab):
    lp, n = frames_for(vocab, "the", "garden", "morning")
    hyp = greedy_hyps(lp, n, vocab, frame_s=0.04)[0]
    assert hyp["text"] == "the garden morning"
    assert [w["word"] for w in hyp["words"]] == ["the", "garden", "morning"]
    assert hyp["words"][0]["start"] == pytest.approx(0.04)
    assert hyp["words"][1]["start"] == pytest.approx(0.04 * (1 + 2 * len(vocab.pieces("the"))))
    assert all(w["conf"] > 0.85 for w in hyp["words"])
    # a piece without "▁" continues the word before it; repeats merge, blanks split
    pieces = vocab.pieces("garden")
    if len(pieces) > 1:
        ids = [vocab.index[p] for p in pieces]
        path = [0, ids[0], ids[0], 0, *ids[1:], 0]
        words = path_words(path, torch.zeros(len(path), len(vocab)), vocab, 0.02)
        assert [(w["word"], w["start"]) for w in words] == [("garden", 0.02)]


def test_lexicon_spelled_in_pieces(vocab, tmp_path):
    n = write_lexicon(["the", "garden", "zebra", "cat"], tmp_path / "lex.txt", vocab)
    assert n == 3  # zebra has no pieces
    entries = dict(read_lexicon(tmp_path / "lex.txt"))
    assert entries["garden"] == vocab.pieces("garden") and entries["the"][0].startswith("\u2581")


def test_beam_search_lexicon_and_lm_over_pieces(vocab, tmp_path):
    need_kenlm()
    (tmp_path / "lm.txt").write_text(LM_TEXT)
    s = build_lm(tmp_path / "lm.txt", tmp_path / "lm", order=3, char_order=4, vocab=vocab)
    lm_dir = tmp_path / "lm"
    assert s["lexicon_words"] == len(set(LM_TEXT.split())) and vocab.kind in s["units"]
    assert (lm_dir / "char.txt").read_text().split("\n")[0] == " ".join(vocab.pieces("the cat sat on the mat"))
    # the network prefers "cut" (0.5) to "cat" (0.4); the LM knows "the cat sat"
    lp, n = frames_for(vocab, "the", ("cat", "cut"), "sat", "in", "the", "garden")
    assert greedy_hyps(lp, n, vocab)[0]["text"] == "the cut sat in the garden"
    assert BeamSearch(vocab)(lp, n)[0]["text"] == "the cut sat in the garden"
    lexicon = BeamSearch(vocab, lexicon=lm_dir / "lexicon.txt")(lp, n, 0.04)[0]
    assert lexicon["text"] == "the cut sat in the garden"  # both are lexicon words
    assert [w["word"] for w in lexicon["words"]] == lexicon["text"].split()
    with_lm = BeamSearch(vocab, lm=lm_dir / "lm.bin", lexicon=lm_dir / "lexicon.txt",
                         options=BeamOptions(lm_weight=1.0))
    hyp = with_lm(lp, n, 0.04)[0]
    assert hyp["text"] == "the cat sat in the garden"
    assert [w["word"] for w in hyp["words"]] == hyp["text"].split()
    assert [w["start"] for w in hyp["words"]] == sorted(w["start"] for w in hyp["words"])
    # lexicon-free search with the KenLM model over pieces does the same
    piece_lm = BeamSearch(vocab, lm=lm_dir / "char.bin", options=BeamOptions(lm_weight=1.0))
    assert piece_lm(lp, n)[0]["text"] == "the cat sat in the garden"
    # a character lexicon (written for other units) is respelled in pieces
    write_lexicon(["the", "cat", "cut", "sat", "in", "garden"], tmp_path / "char_lex.txt")
    assert BeamSearch(vocab, lexicon=tmp_path / "char_lex.txt")(lp, n)[0]["text"] == "the cut sat in the garden"
    # through the DECODERS registry, with hotwords
    cfg = DecodeConfig(lm_path=str(lm_dir / "lm.bin"), lexicon_path=str(lm_dir / "lexicon.txt"))
    assert DECODERS["beam_lm"](lp, n, vocab, cfg)[0]["text"] == "the cat sat in the garden"
    lexicon_only = DecodeConfig(lexicon="on", lexicon_path=str(lm_dir / "lexicon.txt"))
    assert DECODERS["beam"](lp, n, vocab, lexicon_only)[0]["text"] == "the cut sat in the garden"
    biased = DecodeConfig(lexicon="on", lexicon_path=str(lm_dir / "lexicon.txt"), hotwords=["cat"],
                          hotword_weight=2.0)
    assert DECODERS["beam"](lp, n, vocab, biased)[0]["text"] == "the cat sat in the garden"
    # lexicon-free biasing works on the phrase's pieces (here "\u2581c at": the network's
    # 0.6 for the "t" of "cut" still follows, so only the start is asserted)
    free = DECODERS["beam"](lp, n, vocab, DecodeConfig(hotwords=["cat"], hotword_weight=2.0))[0]
    assert free["text"].startswith("the cat")


def test_lm_build_cli_spells_the_lexicon_in_the_recipe_pieces(tmp_path, corpus_text, capsys):
    """`asr lm build` with data.units=bpe trains (or reuses) <root>/lang/bpe_<size>.model."""
    from asr.cli import main
    need_kenlm()
    root = tmp_path / "data"
    (root / "manifests").mkdir(parents=True)
    (root / "manifests" / "train_text.txt").write_text(corpus_text.read_text())
    rc = main(["lm", "build", "--out", str(tmp_path / "lm"), f"data.root={root}", "data.units=bpe",
               "data.units_size=40", "lm.order=2"])
    assert rc == 0 and "2-gram" in capsys.readouterr().out
    v = SentencePieceVocab.from_file(root / "lang" / "bpe_40.model")
    assert dict(read_lexicon(tmp_path / "lm" / "lexicon.txt"))["garden"] == v.pieces("garden")


def test_build_vocab_trains_once_and_prep_checks_characters(tmp_path, corpus_text):
    root = tmp_path / "data"
    (root / "manifests").mkdir(parents=True)
    (root / "manifests" / "train_text.txt").write_text(corpus_text.read_text())
    cfg = DataConfig(root=str(root), units="unigram", units_size=40)
    assert DataConfig().units_size == 256
    v = build_vocab(cfg)
    model = root / "lang" / "unigram_40.model"
    assert model.is_file() and isinstance(v, SentencePieceVocab) and v.kind == "unigram"
    mtime = model.stat().st_mtime_ns
    assert build_vocab(cfg) == v and model.stat().st_mtime_ns == mtime  # reused
    assert type(build_vocab(DataConfig(units="char"))) is CharVocab
    # data preparation checks subword transcripts as normalised characters
    from asr.data.checks import Checks, check_text
    checks = Checks(units="bpe")
    assert type(checks.vocab()) is CharVocab
    assert check_text("The Cat, sat!", checks, checks.vocab()) == ("the cat sat", None, "")


def test_train_and_decode_with_bpe_units(tone_store, tmp_path):
    """A few training steps with data.units=bpe (model trained from the train manifest's texts),
    then the checkpoint decodes greedy, beam and with a lexicon, and transcribes a file."""
    from asr.data.store import FeatureStore
    from asr.train import Trainer
    from asr.transcribe.transcriber import Transcriber
    cfg = small_config(tone_store, tmp_path / "exp", epochs=1, max_steps=2, batch_frames=800)
    cfg.data.units, cfg.data.units_size = "bpe", 16
    trainer = Trainer(cfg)
    assert (tone_store / "lang" / "bpe_16.model").is_file()
    assert isinstance(trainer.vocab, SentencePieceVocab) and len(trainer.vocab) > 8  # a-f, ▁, <unk>, ...
    result = trainer.train()
    assert result["step"] == 2
    ckpt = load_checkpoint(tmp_path / "exp" / "checkpoints" / "last.pt")
    assert ckpt["units_model"].dtype == torch.uint8
    model, vocab, _ = model_from_checkpoint(ckpt)
    assert vocab == trainer.vocab and vocab.kind == "bpe"
    store = FeatureStore(tone_store / "features" / "test")
    write_lexicon(["ab", "cd", "ef", "abc", "fed"], tmp_path / "lexicon.txt", vocab)
    for decoder, options in (("greedy", {}), ("beam", {"beam_size": 4}),
                             ("beam", {"beam_size": 4, "lexicon": "on",
                                       "lexicon_path": str(tmp_path / "lexicon.txt")})):
        hyps = decode_store(model, vocab, store, torch.device("cpu"), decoder=decoder, **options)
        assert len(hyps) == len(store) and all(isinstance(h["text"], str) for h in hyps)
        assert all(" ".join(w["word"] for w in h["words"]) == h["text"] for h in hyps)
        if options.get("lexicon") == "on":
            assert all(w in {"ab", "cd", "ef", "abc", "fed"} for h in hyps for w in h["text"].split())
    wav = tone_store / "audio" / "test" / "test000.wav"
    out = Transcriber(tmp_path / "exp").transcribe(wav)
    assert isinstance(out["text"], str) and out["duration"] > 0
