"""BucketingBatchSampler: batches re-formed every epoch (reproducibly), exact mid-epoch resume,
and data-parallel ranks that get disjoint batches of similar lengths at the same step."""

import numpy as np
import pytest

from asr.data.dataset import BucketingBatchSampler

BATCH_FRAMES, MAX_UTTS = 4000, 16


def corpus(n: int = 600, seed: int = 0) -> list[int]:
    """Utterance lengths in frames, log-normal around 6 s, a few longer than a whole batch."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(600), 0.5, n), 50, 3000).astype(int).tolist()
    return lengths + [5000, 4500]


def sampler(lengths, epoch=1, start=0, **kw):
    kw = {"batch_frames": BATCH_FRAMES, "max_batch_utts": MAX_UTTS, "seed": 7, **kw}
    s = BucketingBatchSampler(lengths, **kw)
    s.set_epoch(epoch, start)
    return s


def compositions(batches) -> set[frozenset]:
    return {frozenset(b) for b in batches}


def test_batches_are_re_formed_each_epoch_and_reproducible():
    lengths = corpus()
    e1, e2 = (list(sampler(lengths, e)) for e in (1, 2))
    for batches in (e1, e2):
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    # most batches hold other utterances in another epoch (the old sampler only reordered them)
    shared = compositions(e1) & compositions(e2)
    assert len(shared) < 0.2 * len(e1), len(shared)
    assert list(sampler(lengths, 1)) == e1  # same (seed, epoch), new sampler: same batches
    assert list(sampler(lengths, 1, seed=8)) != e1
    # the re-formed batches still bucket: padding stays within a few % of the sorted cut
    padded = lambda bs: sum(max(lengths[i] for i in b) * len(b) for b in bs) / sum(lengths)
    assert padded(e2) < padded(sampler(lengths, 0).epoch_batches()) + 0.03


def test_sortagrad_epoch_zero_is_sorted_and_fixed():
    """Epoch 0 with sortagrad (and the dev sampler in validate): shortest first, no shuffling."""
    lengths = corpus()
    a = sampler(lengths, 0).epoch_batches()
    assert a == BucketingBatchSampler(lengths, BATCH_FRAMES, MAX_UTTS, seed=99).epoch_batches()
    flat = [i for b in a for i in b]
    assert [lengths[i] for i in flat] == sorted(lengths)


@pytest.mark.parametrize("world, accum", [(1, 1), (2, 1), (2, 3)])
def test_resume_mid_epoch_gives_the_rest_of_the_epoch(world, accum):
    lengths = corpus()
    for rank in range(world):
        full = list(sampler(lengths, 3, rank=rank, world_size=world, multiple_of=accum))
        for k in (0, 1, 5, len(full) - 1, len(full)):
            resumed = sampler(lengths, 3, k, rank=rank, world_size=world, multiple_of=accum)
            assert list(resumed) == full[k:] and len(resumed) == len(full) - k
    # set_epoch on a sampler that has already run other epochs (the training loop's case)
    s = sampler(lengths, 2)
    list(s)
    s.set_epoch(3, 4)
    assert list(s) == list(sampler(lengths, 3))[4:]


@pytest.mark.parametrize("accum", [1, 2])
def test_two_ranks_disjoint_complete_equal_and_length_matched(accum):
    lengths = corpus()
    for epoch in (0, 1, 2):
        ranks = [sampler(lengths, epoch, rank=r, world_size=2, multiple_of=accum) for r in (0, 1)]
        got = [list(s) for s in ranks]
        assert len(got[0]) == len(got[1]) == ranks[0].per_rank == ranks[1].per_rank
        assert len(got[0]) % accum == 0
        seen = [i for g in got for b in g for i in b]
        assert sorted(seen) == list(range(len(lengths)))  # disjoint and together complete
        # the same step on both ranks: similar lengths, unlike batches dealt out at random
        longest = np.array([[max(lengths[i] for i in b) for b in g] for g in got], float)
        ratio = (longest.max(0) / longest.min(0)).mean()
        rng = np.random.default_rng(epoch)
        dealt = rng.permutation(longest.ravel()).reshape(2, -1)
        random_ratio = (dealt.max(0) / dealt.min(0)).mean()
        assert ratio < 1.15 and ratio - 1 < 0.25 * (random_ratio - 1), (ratio, random_ratio)


def test_an_update_is_the_same_on_two_ranks_or_with_two_accumulation_steps():
    """2 ranks x 1 batch == 1 rank x 2 accumulated batches (what test_distributed relies on)."""
    lengths = corpus()
    for epoch in (0, 1):
        single = list(sampler(lengths, epoch, multiple_of=2))
        r0, r1 = (list(sampler(lengths, epoch, rank=r, world_size=2)) for r in (0, 1))
        assert single[0::2] == r0 and single[1::2] == r1


@pytest.mark.parametrize("world, accum", [(1, 1), (2, 2), (4, 1)])
def test_every_batch_within_budget(world, accum):
    lengths = corpus()
    for epoch in range(4):
        for rank in range(world):
            for b in sampler(lengths, epoch, rank=rank, world_size=world, multiple_of=accum):
                assert len(b) <= MAX_UTTS
                assert max(lengths[i] for i in b) * len(b) <= BATCH_FRAMES or len(b) == 1


def test_whole_groups_without_losing_or_repeating_utterances():
    """A batch count that is no multiple of world_size * accum: batches are halved, not dropped."""
    lengths = [100] * 45  # 16 per batch of 1600 frames: 3 batches (16, 16, 13)
    for world, accum in ((2, 1), (4, 1), (2, 3)):
        ranks = [list(sampler(lengths, 1, batch_frames=1600, rank=r, world_size=world,
                              multiple_of=accum)) for r in range(world)]
        assert len({len(g) for g in ranks}) == 1 and len(ranks[0]) % accum == 0
        assert sorted(i for g in ranks for b in g for i in b) == list(range(45))
    # fewer utterances than ranks: the last group is filled by repeating (every rank steps)
    tiny = [list(sampler([100, 200, 300], 1, rank=r, world_size=4)) for r in range(4)]
    assert all(len(g) == 1 for g in tiny)
    assert {i for g in tiny for b in g for i in b} == {0, 1, 2}
