"""Synthetic inputs of `python -m asr.bench.gpu`, shaped as the loader gives them: utterance
lengths (durations) with random transcripts (random_labels), cut into training batches by
BucketingBatchSampler and padded by collate (synthetic_batches, utterance_batch), and a tiny
learnable corpus (tiny_corpus). Utterance-length settings are duck-typed (asr.bench.gpu's
Utterances).
"""

from __future__ import annotations

import torch

from asr.data.dataset import Batch, BucketingBatchSampler, collate
from asr.model import output_frames
from asr.text.vocab import ctc_min_frames

SAMPLE_RATE, HOP = 16000, 160  # FeatureConfig's defaults: 16 kHz, 10 ms hop
N_FEATS = 80


def durations(count: int, utt, gen: torch.Generator) -> list[float]:
    """Utterance seconds: a normal(mean_s, sd_s) clipped to [min_s, max_s]."""
    d = torch.randn(count, generator=gen, dtype=torch.float64) * utt.sd_s + utt.mean_s
    return d.clamp(utt.min_s, utt.max_s).tolist()


def random_labels(seconds: float, frames: int, vocab_size: int, chars_per_s: float,
                  gen: torch.Generator, subsample: int = 4) -> torch.Tensor:
    """A random non-blank transcript of chars_per_s * seconds tokens, cut to what CTC can emit
    in the subsampled frames."""
    ids = torch.randint(1, vocab_size, (max(1, round(chars_per_s * seconds)),), generator=gen)
    room = output_frames(frames, subsample)
    while len(ids) > 1 and ctc_min_frames(ids.tolist()) > room:
        ids = ids[:-1]
    return ids


def make_item(seconds: float, vocab_size: int, utt, gen: torch.Generator, name: str,
              waveform: bool = False) -> tuple:
    """One utterance as a Dataset item: (noise features (T, 80), or noise audio (samples,)
    with waveform; random labels; its id)."""
    samples = int(seconds * SAMPLE_RATE)
    frames = 1 + samples // HOP  # what FeatureExtractor makes of the samples
    x = (0.1 * torch.randn(samples, generator=gen) if waveform
         else torch.randn(frames, N_FEATS, generator=gen))
    return x, random_labels(seconds, frames, vocab_size, utt.chars_per_s, gen), name


def synthetic_batches(count: int, utt, vocab_size: int, batch_frames: int, max_utts: int,
                      seed: int, waveform: bool = False, pin: bool = False) -> list[Batch]:
    """`count` training batches as the loader gives them: lengths drawn from utt, cut by
    BucketingBatchSampler (batch_frames padded frames, at most max_utts), padded by collate
    (make_item's features or, with waveform, audio for the featuriser on the device).
    pin: page-locked, as the CUDA loader's (pin_memory)."""
    gen = torch.Generator().manual_seed(seed)
    pool = int(1.5 * count * batch_frames / (utt.mean_s * 100)) + max_utts
    seconds = durations(pool, utt, gen)
    frames = [1 + int(s * SAMPLE_RATE) // HOP for s in seconds]
    cuts = list(BucketingBatchSampler(frames, batch_frames, max_utts, seed=seed, sortagrad=False))
    batches = []
    for k in range(count):
        batch = collate([make_item(seconds[i], vocab_size, utt, gen, f"utt{i}", waveform)
                         for i in cuts[k % len(cuts)]])
        batches.append(batch._replace(feats=batch.feats.pin_memory()) if pin else batch)
    return batches


def utterance_batch(count: int, utt, vocab_size: int, seed: int) -> Batch:
    """One batch of `count` utterances with lengths drawn from utt."""
    gen = torch.Generator().manual_seed(seed)
    return collate([make_item(s, vocab_size, utt, gen, f"utt{i}")
                    for i, s in enumerate(durations(count, utt, gen))])


def tiny_corpus(utts: int, vocab_size: int, seed: int) -> Batch:
    """A learnable corpus: each token (blank = silence) has a fixed random feature prototype,
    an utterance is its tokens' prototypes, 6-10 frames each with 2-5 frames of silence
    before, plus noise. Tokens exclude the space (the greedy text is then exact)."""
    gen = torch.Generator().manual_seed(seed)
    protos = 2.0 * torch.randn(vocab_size, N_FEATS, generator=gen)
    items = []
    for u in range(utts):
        labels = torch.randint(2, vocab_size, (int(torch.randint(6, 14, (1,), generator=gen)),),
                               generator=gen)
        path = []
        for token in labels.tolist():
            path += [0] * int(torch.randint(2, 6, (1,), generator=gen))
            path += [token] * int(torch.randint(6, 11, (1,), generator=gen))
        path += [0] * 8
        feats = protos[torch.tensor(path)] + 0.5 * torch.randn(len(path), N_FEATS, generator=gen)
        items.append((feats, labels, f"tiny{u}"))
    return collate(items)
