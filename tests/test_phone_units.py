"""data.units=phone_lexicon: a model of CMU phones trained from word transcripts through a
pronunciation lexicon, and words back through the lexicon search (with and without an LM)."""

import dataclasses

import pytest
import torch

from asr.checkpoint import load_checkpoint, model_from_checkpoint
from asr.config import DecodeConfig
from asr.data.store import open_store
from asr.decoding.decoders import decode_store
from asr.decoding.lm import build_lm, read_lexicon
from asr.scoring.score import wer
from asr.text.lexicon import PHONES, LexiconVocab, lexicon_path
from asr.train import Trainer
from conftest import tone_model_config, write_tone_splits
from test_lm import need_kenlm


@pytest.fixture(scope="module")
def phone_run(tmp_path_factory):
    """The tone corpus (words ab cd ef abc fed) and a small BiLSTM of their phones."""
    root = tmp_path_factory.mktemp("phones")
    write_tone_splits(root)
    cfg = tone_model_config(root)
    cfg.data.units = "phone_lexicon"
    cfg.train.epochs = 24
    trainer = Trainer(cfg)
    trainer.train()
    return root, cfg, trainer


def test_targets_are_the_phones_of_each_words_first_pronunciation(phone_run):
    root, cfg, trainer = phone_run
    vocab = trainer.vocab
    assert isinstance(vocab, LexiconVocab) and vocab.tokens[1:-1] == list(PHONES)
    assert lexicon_path(cfg.data).is_file()  # written once into <root>/lang
    assert vocab.units("cd fed") == ["s", "iy", "d", "iy", "f", "eh", "d"]
    assert vocab.decode(vocab.encode("ab fed")) == "ae b f eh d"
    assert vocab.unknown("ab zebra") == ["zebra"] and not vocab.covers("ab zebra")
    with pytest.raises(ValueError, match="zebra"):
        vocab.encode("ab zebra")


def test_checkpoint_carries_its_lexicon_and_learns_the_phones(phone_run):
    root, cfg, trainer = phone_run
    ckpt = load_checkpoint(root / "exp" / "checkpoints" / "last.pt")
    model, vocab, _ = model_from_checkpoint(ckpt)
    assert isinstance(vocab, LexiconVocab) and vocab.lexicon == trainer.vocab.lexicon
    assert trainer.validate()["wer"] < 20  # dev phone error rate (WER over phone tokens)


def test_words_come_back_through_the_lexicon_search_and_greedy_is_refused(phone_run, tmp_path):
    need_kenlm()
    root, cfg, trainer = phone_run
    lm = tmp_path / "lm"
    build_lm(root / "manifests" / "train_text.txt", lm, order=2, vocab=trainer.vocab)
    spelled = dict(read_lexicon(lm / "lexicon.txt"))
    assert spelled["fed"] == ["f", "eh", "d"]  # the LM's lexicon is spelled in phones
    store = open_store(root, "test", cfg.features)
    refs = [e["text"] for e in store.entries]
    model = trainer.model.eval()
    base = DecodeConfig(lm_path=str(lm / "lm.bin"), lexicon_path=str(lm / "lexicon.txt"))
    for decoder, options in (("beam_lm", {}), ("beam", {"lexicon": "on"})):
        cfg_d = dataclasses.replace(base, decoder=decoder, **options)
        hyps = decode_store(model, trainer.vocab, store, torch.device("cpu"), decoder=decoder, cfg=cfg_d)
        assert wer(refs, [h["text"] for h in hyps]) < 15, decoder
        word = hyps[0]["words"][0]
        assert word["word"] in spelled and 0 <= word["start"] < word["end"] and 0 < word["conf"] <= 1
    with pytest.raises(ValueError, match="phones, not words"):
        decode_store(model, trainer.vocab, store, torch.device("cpu"), decoder="greedy")


def test_a_bundle_of_a_phone_model_transcribes_words_and_exports(phone_run, tmp_path):
    """Bundle (weights + lexicon inside, LM lexicon in phones), the Python API and the int8
    ONNX network give words, as for a character model."""
    need_kenlm()
    import asr
    from asr.bundle import export_bundle
    from asr.source import model_source
    from test_bundle_api import tone_file
    root, cfg, trainer = phone_run
    lm = tmp_path / "lm"
    build_lm(root / "manifests" / "train_text.txt", lm, order=2, vocab=trainer.vocab)
    bundle = tmp_path / "phones.bundle"
    model_source(root / "exp", which="last").save(bundle, lm_dir=lm)
    audio = tone_file(tmp_path / "a.wav", "abc fed ab")
    model = asr.load(bundle)
    result = model.transcribe(audio)
    assert result.text == "abc fed ab" and [w.word for w in result.words] == ["abc", "fed", "ab"]
    export_bundle(bundle, "onnx", int8=True)
    assert asr.load(bundle, engine="onnx").transcribe(audio).text == "abc fed ab"


def test_phone_models_are_refused_where_only_greedy_decoding_runs(phone_run):
    """Streaming decodes greedily: a phone model's best path is phones, so it is refused by
    name rather than giving phones as words; so is a non-English phone_lexicon corpus."""
    from asr.streaming import StreamingRecognizer
    from asr.text.lexicon import lexicon_vocab
    from asr.config import ModelConfig
    from asr.model import CTCModel
    root, cfg, trainer = phone_run
    streamable = CTCModel(ModelConfig(bidirectional=False, rnn_layers=1, rnn_hidden=16,
                                      conv_channels=4, subsample=2), 80, len(trainer.vocab))
    with pytest.raises(ValueError, match="phones, not words"):
        StreamingRecognizer(streamable, trainer.vocab, cfg.features)
    german = dataclasses.replace(cfg.data, language="de")
    with pytest.raises(ValueError, match="for English"):
        lexicon_vocab(german)


def test_importers_normalise_transcripts_for_phone_units():
    """A phone_lexicon corpus is prepared from word text as a character one is: normalised
    (the lexicon is built from it later), not refused for its capitals and punctuation."""
    from asr.data.checks import Checks, check_text
    checks = Checks(units="phone_lexicon")
    text, problem, detail = check_text("You couldn't pilot your way out of a paper bag.", checks,
                                       checks.vocab())
    assert (text, problem) == ("you couldn't pilot your way out of a paper bag", None), detail


def test_a_pronunciation_keeps_its_most_probable_words_up_to_the_trie_limit(tmp_path):
    """flashlight's trie holds 6 words per spelling and drops the rest in insertion order
    (one stderr line each): the LM lexicon keeps the 6 most probable homophones instead."""
    from asr.decoding.lm import TRIE_MAX_HOMOPHONES, arpa_words, write_phone_lexicon
    homophones = [f"w{i}" for i in range(8)]
    arpa = tmp_path / "lm.arpa"
    unigrams = "".join(f"-{1 + i / 10:.1f}\t{w}\n" for i, w in enumerate(reversed(homophones)))
    arpa.write_text(f"\\data\\\nngram 1=10\n\n\\1-grams:\n-1.0\t<s>\n{unigrams}-2.0\tab\n\n\\end\\\n")
    words = arpa_words(arpa)
    assert words == [*reversed(homophones), "ab"]  # most probable first
    lexicon = {w: [["k", "ae", "t"]] for w in homophones} | {"ab": [["ae", "b"]]}
    n = write_phone_lexicon(words, tmp_path / "lexicon.txt", LexiconVocab(lexicon))
    kept = [ln.split("\t")[0] for ln in (tmp_path / "lexicon.txt").read_text().splitlines()]
    assert n == TRIE_MAX_HOMOPHONES + 1 == len(kept)
    assert kept == [*reversed(homophones)][:TRIE_MAX_HOMOPHONES] + ["ab"]


def test_lm_only_words_get_cmudict_pronunciations_and_no_letter_to_sound(tmp_path, monkeypatch):
    """The LM lexicon: the corpus's own words as the model spells them, CMUdict for the LM
    text's other words, and no letter-to-sound (minutes for the LM text's rare words)."""
    import asr.text.lexicon as lexicon_module
    from asr.decoding.lm import write_phone_lexicon

    def no_g2p(words):
        raise AssertionError(f"letter-to-sound called for {list(words)}")
    monkeypatch.setattr(lexicon_module, "g2p", no_g2p)
    vocab = LexiconVocab({"zorblax": [["z", "ao", "r", "b", "l", "ae", "k", "s"]]})
    n = write_phone_lexicon(["zorblax", "cat", "blorfity"], tmp_path / "lexicon.txt", vocab)
    lines = (tmp_path / "lexicon.txt").read_text().splitlines()
    assert n == 2 and lines == ["zorblax\tz ao r b l ae k s", "cat\tk ae t"]
