"""Languages other than English: normalisation that keeps each script, character vocabularies
from the training text, LM text and lexicons, CER-first scoring of scripts without spaces, and
the Common Voice recipe end to end on German, Russian and Mandarin miniatures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.text.normalize import Normalizer, normalize_text, writes_without_spaces
from test_prepare_common import corpus_config, pipeline, read_jsonl, tone
from test_prepare_commonvoice import HEADER


@pytest.mark.parametrize("language, raw, expected", [
    ("de", "Straße, 3 Äpfel! „Gut“ – l'Homme", "straße drei äpfel gut l'homme"),
    ("ru", "Ёлка, 5 шаров. 1 000 рублей", "ёлка пять шаров одна тысяча рублей"),
    ("zh-CN", "你好，世界！我有3个苹果。", "你好世界我有3个苹果"),
    ("ja", "東京タワー、すごい！", "東京タワーすごい"),
    ("tr", "İstanbul'da IŞIK", "istanbul'da ışık"),
    ("hi", "नमस्ते, दुनिया!", "नमस्ते दुनिया"),
    ("fr", "Ｆｕｌｌ　ｗｉｄｔｈ ﬁne", "full width fine"),
])
def test_normalisation_keeps_each_script(language, raw, expected):
    assert normalize_text(raw, language) == expected


def test_english_normalisation_is_unchanged():
    assert normalize_text("Café au lait, 2 cups!") == "cafe au lait two cups"
    assert normalize_text("Café au lait, 2 cups!", "en-GB") == "cafe au lait two cups"
    assert normalize_text("Café au lait", "fr") == "café au lait"
    assert writes_without_spaces("zh-CN") and writes_without_spaces("th") and not writes_without_spaces("ru")


def test_whisper_normalisers_for_scoring():
    assert Normalizer.parse("whisper")("Mr. Smith, colour, uh, I'm here") == "mister smith color i am here"
    basic = Normalizer.parse("whisper_basic")
    assert basic("Ёлка, (5) шаров!") == "ёлка шаров" and basic.describe() == "whisper_basic"
    with pytest.raises(ValueError, match="one of whisper"):
        Normalizer.parse("whisper,whisper_basic")


def test_scoring_by_characters():
    from asr.scoring.score import score
    from asr.scoring.tables import results_table, summary_text
    refs, hyps = {"a": "你好世界", "b": "我们"}, {"a": "你好 世", "b": "我们"}
    s = score(refs, hyps, by_characters=True, n_boot=50)
    assert s["unit"] == "character" and s["words"] == 6 and s["errors"] == 1  # the space is no error
    assert s["wer"] == pytest.approx(100 / 6) and s["cer"] == pytest.approx(100 / 6)
    assert summary_text(s).startswith("CER 16.67")
    assert "CER % ± 95% CI" in results_table([{"split": "test", "decoder": "greedy", **s}])
    assert score(refs, hyps, n_boot=50)["unit"] == "word"


def test_score_cli_by_characters(tmp_path, capsys):
    from asr.cli import main
    (tmp_path / "ref.jsonl").write_text(json.dumps({"id": "a", "text": "你好世界"}, ensure_ascii=False) + "\n")
    (tmp_path / "hyp.jsonl").write_text(json.dumps({"id": "a", "text": "你好世"}, ensure_ascii=False) + "\n")
    assert main(["score", str(tmp_path / "ref.jsonl"), str(tmp_path / "hyp.jsonl"), "--by-characters"]) == 0
    assert capsys.readouterr().out.startswith("CER 25.00")


def test_sentencepiece_too_small_for_a_script_says_what_to_set(tmp_path):
    from asr.text.vocab import train_sentencepiece
    rng = np.random.default_rng(0)
    chars = [chr(0x4E00 + i) for i in range(300)]
    (tmp_path / "t.txt").write_text("\n".join(["".join(chars)] + ["".join(rng.choice(chars, 10)) for _ in range(200)]))
    with pytest.raises(ValueError, match=r"300 distinct characters.*data.units_size above 302"):
        train_sentencepiece(tmp_path / "t.txt", tmp_path / "m.model", "bpe", 256)


# ---------------------------------------------------------------- Common Voice miniatures

WORDS = {"de": ["straße", "äpfel", "schön", "grün", "müde"],
         "ru": ["ёлка", "мир", "шар", "дом", "кот"],
         "zh-CN": ["你好", "世界", "苹果", "我们", "天气"]}
RAW = {"de": "{}, sagte er.", "ru": "«{}», — сказал он.", "zh-CN": "“{}”，他说。"}


def make_release(base: Path, language: str, counts=(("train", 12), ("dev", 3), ("test", 3))) -> Path:
    """A Common Voice release folder of `language` with the real columns; mp3 tone clips."""
    release = base / "cv-corpus-17.0-2024-03-15" / language
    (release / "clips").mkdir(parents=True)
    rng, n = np.random.default_rng(1), 0
    joiner = "" if writes_without_spaces(language) else " "
    for split, count in counts:
        rows = ["\t".join(HEADER)]
        for _ in range(count):
            words = rng.choice(WORDS[language], size=int(rng.integers(1, 3)))
            spoken = joiner.join(words)
            clip = f"common_voice_{language}_{5000 + n}.mp3"
            sf.write(release / "clips" / clip, tone(spoken, sr=48000, seed=n), 48000, format="MP3")
            sentence = RAW[language].format(spoken.capitalize())
            rows.append("\t".join([f"{'b' * 63}{n % 4}", clip, f"s{n}", sentence, "", "2", "0", "",
                                   "", "", "", language, ""]))
            n += 1
        (release / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return release


@pytest.mark.parametrize("language", ["de", "ru", "zh-CN"])
def test_commonvoice_in_other_languages_trains_decodes_and_scores(tmp_path, language):
    from asr.scoring.score import score
    from asr.text.units import build_vocab
    release = make_release(tmp_path / "cv", language)
    cfg = corpus_config(tmp_path, "commonvoice", release, language=language)
    summary, hyps = pipeline(cfg, {"train": 12, "dev": 3, "test": 3})
    assert not summary.rejects
    root = Path(cfg.data.root)
    train = read_jsonl(root / "manifests" / "train.jsonl")
    said = {"de": "sagte er", "ru": "сказал он", "zh-CN": "他说"}[language]
    assert all(e["text"].endswith(said) for e in train)
    assert not any(c in e["text"] for e in train for c in ",«»—“”，。")
    # the vocabulary is the training text's characters, the script's own letters among them
    tokens = (root / "lang" / "chars.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert tokens[:2] == ["<blank>", " "] and set(tokens[2:]) == set("".join(e["text"] for e in train)) - {" "}
    assert set(said) - {" "} <= set(tokens)
    assert build_vocab(cfg.data).tokens == tokens
    refs = {e["id"]: e["text"] for e in read_jsonl(root / "manifests" / "test.jsonl")}
    s = score(refs, {h["id"]: h["text"] for h in hyps}, n_boot=20,
              by_characters=writes_without_spaces(language))
    assert s["unit"] == ("character" if language == "zh-CN" else "word") and s["utterances"] == 3
    if language != "ru":  # beam search with a KenLM model over the language's words (zh: characters)
        from asr.cli import main
        from asr.data.store import FeatureStore
        from asr.decoding.decoders import decode_store
        from asr.decoding.lm import read_lexicon_words
        from test_lm import need_kenlm
        need_kenlm()
        assert main(["lm", "build", f"data.root={root}", f"data.language={language}", "lm.order=2"]) == 0
        words = set(read_lexicon_words(root / "lm" / "lexicon.txt"))
        assert words >= ({"他", "说"} if language == "zh-CN" else {"sagte", "er"})
        trainer_model, vocab = pipeline_model(cfg)
        beam = decode_store(trainer_model, vocab, FeatureStore(root / "features" / "test"),
                            torch.device("cpu"), decoder="beam_lm", beam_size=4,
                            lm_path=str(root / "lm" / "lm.bin"), lexicon_path=str(root / "lm" / "lexicon.txt"))
        assert len(beam) == 3 and all(set(h["text"]) <= set(vocab.tokens) for h in beam)


def pipeline_model(cfg):
    """The model and vocabulary of the run pipeline() trained (its last checkpoint)."""
    from asr.checkpoint import find_checkpoint, load_checkpoint, model_from_checkpoint
    model, vocab, _ = model_from_checkpoint(load_checkpoint(find_checkpoint(cfg.train.exp_dir, "last")))
    return model, vocab


def test_commonvoice_refuses_a_release_of_another_language(tmp_path):
    from data_prep.prepare import run_prepare
    release = make_release(tmp_path / "cv", "de", counts=(("train", 2), ("dev", 1), ("test", 1)))
    cfg = corpus_config(tmp_path, "commonvoice", release)  # data.language stays "en"
    with pytest.raises(ValueError, match="'de' release but data.language is 'en'"):
        run_prepare(cfg, progress=False)


@pytest.mark.parametrize("language", ["de", "zh-CN"])
def test_lm_text_and_lexicon_for_other_scripts(tmp_path, language):
    """German LM words keep their letters; Chinese LM words are single characters (no spaces to
    find words by), spelled in the corpus's own character vocabulary."""
    from asr.decoding.lm import build_lm, read_lexicon
    from asr.text.vocab import CharVocab
    from test_lm import need_kenlm
    need_kenlm()
    lines = {"de": ["Die Straße ist grün.", "Schöne Äpfel, sagte er!", "Die Äpfel sind grün."],
             "zh-CN": ["你好，世界！", "我们的天气很好。", "你好，我们！"]}[language]
    (tmp_path / "text.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    chars = sorted(set("".join(normalize_text(x, language) for x in lines)) - {" "})
    vocab = CharVocab(["<blank>", " ", *chars])
    s = build_lm(tmp_path / "text.txt", tmp_path / "lm", order=2, vocab=vocab, language=language)
    assert s["sentences"] == 3 and s["dropped"] == 0
    lexicon = dict(read_lexicon(tmp_path / "lm" / "lexicon.txt"))
    if language == "de":
        assert lexicon["straße"][:6] == list("straße") and "äpfel" in lexicon
    else:
        assert "你" in lexicon and "你好" not in lexicon and lexicon["界"][0] == "界"
