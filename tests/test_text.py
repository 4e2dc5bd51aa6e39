import pytest

from asr.text.normalize import normalize_text, number_to_words

from asr.text.vocab import CharVocab


@pytest.mark.parametrize("n,words", [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (40, "forty"), (42, "forty two"),
    (100, "one hundred"), (115, "one hundred fifteen"), (1984, "one thousand nine hundred eighty four"),
    (2000000, "two million"), (1001, "one thousand one"),
])
def test_number_to_words(n, words):
    assert number_to_words(n) == words


@pytest.mark.parametrize("raw,norm", [
    ("Hello, World!", "hello world"),
    ("It's 5 o'clock, Mr. O'Brien.", "it's five o'clock mr o'brien"),
    ("'Quoted' words", "quoted words"),
    ("He paid $1,250 -- in 2 days", "he paid one thousand two hundred fifty in two days"),
    ("Café  naïve\tTAB", "cafe naive tab"),
    ("rock & roll 100%", "rock and roll one hundred percent"),
    ("   ", ""),
    ("x-ray's", "x ray's"),
])
def test_normalize_text(raw, norm):
    assert normalize_text(raw) == norm


def test_normalized_text_is_covered_by_the_vocabulary():
    vocab = CharVocab()
    text = normalize_text("The 3 quick brown foxes' dens, aren't they?")
    assert vocab.covers(text)
    assert vocab.decode(vocab.encode(text)) == text


def test_vocab_blank_and_unknown_characters():
    vocab = CharVocab()
    assert vocab.tokens[0] == CharVocab.BLANK and vocab.blank == 0
    assert len(vocab) == 29
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.encode("héllo")
    with pytest.raises(ValueError, match="blank"):
        CharVocab(["a", "b"])
