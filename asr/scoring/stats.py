"""Confidence intervals and significance tests for WER, vectorised with numpy.

All functions work on per-utterance counts: ``errors[i]`` (S+D+I of utterance i) and
``words[i]`` (reference words of utterance i). WER of a sample is sum(errors) / sum(words).

- `bootstrap_ci`: percentile bootstrap over utterances (or over clusters such as speakers:
  pass ``groups``, and whole speakers are resampled, which is the honest choice when
  utterances of one speaker are correlated).
- `paired_bootstrap`: Koehn (2004) paired bootstrap resampling of the difference WER_B - WER_A.
- `mapsswe`: the matched-pairs sentence-segment word error test of NIST sclite
  (Gillick & Cox 1989), on segments given by the caller (see `asr.scoring.compare.mapsswe_segments`).
"""

from __future__ import annotations

import math

import numpy as np

ALPHA = 0.05
_CHUNK_CELLS = 4_000_000  # resample indices drawn per block: bounds memory at ~32 MB


def _cluster(values: list[np.ndarray], groups) -> list[np.ndarray]:
    """Sum each array within groups (cluster bootstrap); identity when groups is None."""
    if groups is None:
        return values
    _, codes = np.unique(np.asarray(groups), return_inverse=True)
    return [np.bincount(codes, weights=v) for v in values]


def _resampled_sums(values: list[np.ndarray], n_boot: int, rng: np.random.Generator):
    """Sums of each array over n_boot resamples (with replacement) of its n items.

    Indices are drawn in blocks (memory stays ~32 MB whatever n and n_boot). Two arrays of
    non-negative integer counts (errors, words) are packed into one int64 so that a single
    gather serves both: the hot path of every WER bootstrap.
    """
    n = len(values[0])
    out = [np.empty(n_boot) for _ in values]
    block = max(1, _CHUNK_CELLS // max(n, 1))
    packed = None
    if len(values) == 2 and all(np.all(v >= 0) and np.all(v == np.round(v)) for v in values) \
            and n * max(float(v.max()) for v in values) < 2**31:  # no carry between halves
        packed = (values[1].astype(np.int64) << 32) | values[0].astype(np.int64)
    for start in range(0, n_boot, block):
        stop = min(n_boot, start + block)
        idx = rng.integers(0, n, size=(stop - start, n), dtype=np.uint32 if n < 2**32 else np.int64)
        if packed is not None:
            tot = packed[idx].sum(axis=1)
            out[0][start:stop] = tot & 0xFFFFFFFF
            out[1][start:stop] = tot >> 32
        else:
            for v, o in zip(values, out):
                o[start:stop] = v[idx].sum(axis=1)
    return out


def _rate(err: np.ndarray, words: np.ndarray) -> np.ndarray:
    """100 * err / words, with 0/0 = 0 and x/0 = inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = 100.0 * err / words
    return np.where(words > 0, r, np.where(err > 0, np.inf, 0.0))


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    """Central `level` interval of the bootstrap distribution (inf-safe: x/0 rates are inf)."""
    with np.errstate(invalid="ignore"):
        lo, hi = np.percentile(values, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return (float(lo) if not np.isnan(lo) else np.inf), (float(hi) if not np.isnan(hi) else np.inf)


def bootstrap_ci(errors, words, groups=None, n_boot: int = 1000, level: float = 0.95,
                 seed: int = 0) -> dict:
    """Percentile bootstrap confidence interval of the WER (in percent).

    Returns {"wer", "lo", "hi", "half_width", "n_boot", "level", "unit", "units"}; half_width is
    (hi - lo) / 2, the "±" printed with every WER.
    """
    errors = np.asarray(errors, dtype=np.float64)
    words = np.asarray(words, dtype=np.float64)
    wer = float(_rate(errors.sum(), words.sum()))
    e, w = _cluster([errors, words], groups)
    res = {"wer": wer, "n_boot": n_boot, "level": level,
           "unit": "utterance" if groups is None else "speaker", "units": len(e)}
    if len(e) == 0 or n_boot <= 0:
        return {**res, "lo": wer, "hi": wer, "half_width": 0.0}
    rng = np.random.default_rng(seed)
    be, bw = _resampled_sums([e, w], n_boot, rng)
    lo, hi = _percentiles(_rate(be, bw), level)
    half = (hi - lo) / 2 if np.isfinite(hi - lo) else float("inf")
    return {**res, "lo": lo, "hi": hi, "half_width": half}


def paired_bootstrap(errors_a, errors_b, words, groups=None, n_boot: int = 1000,
                     level: float = 0.95, seed: int = 0) -> dict:
    """Paired bootstrap (Koehn 2004) of delta = WER_B - WER_A (percent points).

    Both systems are scored on the same resampled utterances (or speakers, with groups). The
    two-sided p-value is 2 * min(P*(delta <= 0), P*(delta >= 0)) over the resamples, capped at
    1: the probability mass of resamples in which the sign of the difference is not the
    observed one. Identical systems give p = 1.
    """
    ea = np.asarray(errors_a, dtype=np.float64)
    eb = np.asarray(errors_b, dtype=np.float64)
    w = np.asarray(words, dtype=np.float64)
    total = w.sum()
    delta = float(_rate(eb.sum() - ea.sum(), total)) if total > 0 else 0.0
    d, w = _cluster([eb - ea, w], groups)
    res = {"test": "paired bootstrap", "delta": delta, "n_boot": n_boot, "level": level,
           "unit": "utterance" if groups is None else "speaker", "units": len(d)}
    if len(d) == 0 or total == 0:
        return {**res, "lo": delta, "hi": delta, "p_value": 1.0, "p_b_better": 0.0}
    rng = np.random.default_rng(seed)
    bd, bw = _resampled_sums([d, w], n_boot, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        deltas = np.where(bw > 0, 100.0 * bd / bw, 0.0)
    lo, hi = _percentiles(deltas, level)
    le, ge = float(np.mean(deltas <= 0)), float(np.mean(deltas >= 0))
    return {**res, "lo": float(lo), "hi": float(hi), "p_value": min(1.0, 2 * min(le, ge)),
            "p_b_better": float(np.mean(deltas < 0))}


def mapsswe(seg_errors_a, seg_errors_b) -> dict:
    """sclite's matched-pairs sentence-segment word error test.

    Z_i = errors_A(i) - errors_B(i) over the n segments; W = mean(Z) / (sd(Z) / sqrt(n)) is
    approximately standard normal under "no difference" (n >= ~10 segments); two-sided p-value.
    A positive mean means B makes fewer errors.
    """
    z = np.asarray(seg_errors_a, dtype=np.float64) - np.asarray(seg_errors_b, dtype=np.float64)
    n = len(z)
    res = {"test": "MAPSSWE", "segments": n, "mean_diff": float(z.mean()) if n else 0.0}
    if n == 0 or not np.any(z):
        return {**res, "w": 0.0, "p_value": 1.0}
    mu = float(z.mean())
    sd = float(z.std(ddof=1)) if n > 1 else 0.0
    if sd == 0.0:  # every segment differs by the same non-zero amount
        return {**res, "w": math.copysign(math.inf, mu), "p_value": 0.0 if n > 1 else 1.0}
    w = mu / (sd / math.sqrt(n))
    return {**res, "w": w, "p_value": math.erfc(abs(w) / math.sqrt(2))}


def verdict(delta: float, p_value: float, alpha: float = ALPHA) -> str:
    """'better' / 'worse' (for B against A) or 'not distinguishable' at significance alpha."""
    if p_value < alpha and delta != 0:
        return "better" if delta < 0 else "worse"
    return "not distinguishable"
