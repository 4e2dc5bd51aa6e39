"""Text normalisation options of `asr score`, and the mapping file."""

import pytest

from asr.scoring.score import score
from asr.text.normalize import Normalizer, read_mapping


def test_options_one_by_one():
    text = "Hello, World! It's 5 o'clock -- \u2018quoted\u2019 [noise] <unk> 2nd 1,000 3.5"
    assert Normalizer.parse("none")(text) == " ".join(text.split())
    assert Normalizer.parse("lower")("Hello WORLD") == "hello world"
    assert Normalizer.parse("punct")("Hello, World! It's well-known 'x' \u2018y\u2019 a_b") == \
        "Hello World It's well known x y a b"
    assert Normalizer.parse("numbers")("5 2nd 21st 1,000 3.5 20th 1984") == \
        ("five second twenty first one thousand three point five twentieth "
         "one thousand nine hundred eighty four")
    assert Normalizer.parse("nonwords")("a [noise] b <unk> c (%hesitation) d [x]y") == "a b c d [x]y"
    assert Normalizer.parse("all")(text) == \
        "hello world it's five o'clock quoted second one thousand three point five"


def test_mapping_file(tmp_path):
    m = tmp_path / "map.txt"
    m.write_text("# comment\ncolour color\nuh\nok okay\nall right\talright\n\n")
    assert read_mapping(m) == {"colour": "color", "uh": "", "ok": "okay", "all right": "alright"}
    n = Normalizer.parse("lower", mapping=m)
    assert n("Uh the Colour is ALL RIGHT ok") == "the color is alright okay"
    assert n("colours okay") == "colours okay"  # whole words only
    assert "mapping (4 rules)" in n.describe()
    s = score({"a": "the colour is all right"}, {"a": "uh the color is alright"}, normalizer=n)
    assert s["errors"] == 0
    bad = tmp_path / "bad.txt"
    bad.write_text("\tx\n")
    with pytest.raises(ValueError, match="bad.txt:1"):
        read_mapping(bad)


def test_unknown_option():
    with pytest.raises(ValueError, match="unknown normalisation"):
        Normalizer.parse("lower,shout")
    assert Normalizer.parse("").is_identity and Normalizer.parse("none").describe().startswith("none")


def test_normalisation_changes_the_numbers_by_hand():
    refs = {"a": "The cat, sat.", "b": "I have 2 dogs"}
    hyps = {"a": "the cat sat", "b": "i have two dogs"}
    assert score(refs, hyps)["errors"] == 5  # The, cat, sat. / I, 2
    assert score(refs, hyps, normalizer=Normalizer.parse("lower,punct"))["errors"] == 1  # 2
    assert score(refs, hyps, normalizer=Normalizer.parse("all"))["errors"] == 0
