import torch

from asr.decoding.decoders import greedy_decode, greedy_ids
from asr.text.vocab import CharVocab


def one_hot_path(ids, vocab_size=29):
    lp = torch.full((len(ids), vocab_size), -10.0)
    for t, i in enumerate(ids):
        lp[t, i] = 0.0
    return lp


def test_greedy_merges_repeats_and_drops_blanks():
    v = CharVocab()
    a, b, space = v.index["a"], v.index["b"], v.index[" "]
    path = [0, a, a, 0, a, b, b, 0, space, space, b, 0]
    assert greedy_ids(one_hot_path(path), len(path)) == [a, a, b, space, b]
    lp = one_hot_path(path).unsqueeze(0)
    assert greedy_decode(lp, torch.tensor([len(path)]), v) == ["aab b"]
    # frames beyond the length are ignored
    assert greedy_decode(lp, torch.tensor([3]), v) == ["a"]
