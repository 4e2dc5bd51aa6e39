"""Bootstrap confidence intervals and the paired significance tests on constructed data."""

import math

import numpy as np
import pytest

from asr.scoring.stats import bootstrap_ci, mapsswe, paired_bootstrap, verdict


def test_ci_zero_width_when_every_utterance_has_the_same_error_rate():
    ci = bootstrap_ci(np.ones(200), np.full(200, 4), n_boot=500)
    assert ci["wer"] == 25.0 and ci["lo"] == ci["hi"] == 25.0 and ci["half_width"] == 0.0


def test_ci_matches_the_binomial_case():
    # 400 one-word utterances, 100 wrong: resampled WER ~ Binomial(400, 1/4) / 400, so the 95%
    # interval is 25 ± 1.96 * sqrt(0.25 * 0.75 / 400) * 100 = 25 ± 4.24 points
    errors = np.r_[np.ones(100), np.zeros(300)]
    ci = bootstrap_ci(errors, np.ones(400), n_boot=4000, seed=1)
    half = 1.96 * math.sqrt(0.25 * 0.75 / 400) * 100
    assert ci["wer"] == 25.0
    assert ci["half_width"] == pytest.approx(half, abs=0.5)
    assert ci["lo"] == pytest.approx(25 - half, abs=0.6) and ci["hi"] == pytest.approx(25 + half, abs=0.6)
    # deterministic for a seed
    assert bootstrap_ci(errors, np.ones(400), n_boot=300, seed=3) == bootstrap_ci(errors, np.ones(400), n_boot=300, seed=3)


def test_speaker_bootstrap_is_wider_when_speakers_differ():
    # 10 speakers x 40 utterances; half the speakers have 4x the error rate
    rng = np.random.default_rng(0)
    spk = np.repeat(np.arange(10), 40)
    errors = rng.binomial(10, np.where(spk < 5, 0.05, 0.2))
    words = np.full(400, 10)
    utt = bootstrap_ci(errors, words, n_boot=2000)
    by_spk = bootstrap_ci(errors, words, groups=spk, n_boot=2000)
    assert by_spk["unit"] == "speaker" and by_spk["units"] == 10
    assert by_spk["wer"] == utt["wer"]
    assert by_spk["half_width"] > 1.5 * utt["half_width"]


def test_large_counts_use_exact_sums():
    # packed (errors, words) sums must not carry between halves
    errors = np.full(50, 10**6)
    words = np.full(50, 2 * 10**6)
    ci = bootstrap_ci(errors, words, n_boot=50)
    assert ci["lo"] == ci["hi"] == 50.0


def _constructed_pair(seed=0, n=300, better=True):
    rng = np.random.default_rng(seed)
    a = rng.binomial(10, 0.25, size=n)
    if better:  # B fixes one error in 60% of the utterances that have one
        b = a - ((a > 0) & (rng.random(n) < 0.6))
    else:  # the same errors, spread differently: same total, no real difference
        b = rng.permutation(a)
    return a, b, np.full(n, 10)


def test_paired_bootstrap_finds_a_real_difference():
    a, b, w = _constructed_pair(better=True)
    r = paired_bootstrap(a, b, w, n_boot=2000)
    assert r["delta"] < 0 and r["hi"] < 0 and r["p_value"] < 0.01
    assert verdict(r["delta"], r["p_value"]) == "better"
    r = paired_bootstrap(b, a, w, n_boot=2000)  # and the other way round
    assert verdict(r["delta"], r["p_value"]) == "worse"


def test_paired_bootstrap_does_not_reject_a_null():
    a, b, w = _constructed_pair(better=False)
    r = paired_bootstrap(a, b, w, n_boot=2000)
    assert r["delta"] == 0.0 and r["lo"] < 0 < r["hi"] and r["p_value"] > 0.5
    assert verdict(r["delta"], r["p_value"]) == "not distinguishable"
    same = paired_bootstrap(a, a, w)
    assert same["p_value"] == 1.0 and same["lo"] == same["hi"] == 0.0


def test_mapsswe_hand_computed():
    # Z = [1, 1, 0, 2]: mean 1, sd sqrt(2/3), W = 1 / (sd / 2) = 2.449, p = erfc(W / sqrt 2)
    r = mapsswe([1, 2, 0, 3], [0, 1, 0, 1])
    assert r["segments"] == 4 and r["mean_diff"] == 1.0
    assert r["w"] == pytest.approx(1 / (math.sqrt(2 / 3) / 2))
    assert r["p_value"] == pytest.approx(math.erfc(r["w"] / math.sqrt(2)))
    assert r["p_value"] == pytest.approx(0.0143, abs=1e-3)


def test_mapsswe_finds_a_real_difference_and_not_a_null():
    a, b, _ = _constructed_pair(better=True)
    r = mapsswe(a, b)
    assert r["w"] > 5 and r["p_value"] < 1e-6
    assert verdict(-r["mean_diff"], r["p_value"]) == "better"
    a, b, _ = _constructed_pair(better=False)
    r = mapsswe(a, b)
    assert r["mean_diff"] == 0.0 and r["p_value"] > 0.5
    assert mapsswe([2, 3], [2, 3])["p_value"] == 1.0
    assert mapsswe([], [])["p_value"] == 1.0
    assert mapsswe([2, 3, 4], [1, 2, 3])["p_value"] == 0.0  # every segment differs by one
