"""The decoder row of `python -m asr.bench.gpu`: torchaudio's CUDA CTC beam search against the
project's CPU beam search (greedy without flashlight-text) on synthetic peaky network outputs,
and the character error rate that this row and the convergence row report (edit_distance,
error_rate: numpy, as jiwer may be missing from the GPU image).
"""

from __future__ import annotations

import importlib
import statistics
import time

import numpy as np
import torch

from asr.bench.gpu_batches import HOP, SAMPLE_RATE, durations
from asr.bench.gpu_machine import sync
from asr.config import DecodeConfig
from asr.decoding.decoders import greedy_decode
from asr.model import output_frames


# ---------------------------------------------------------------- character error rate

def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, one numpy row per character of a."""
    if a == b or not a or not b:
        return 0 if a == b else max(len(a), len(b))
    y = np.array([ord(c) for c in b])
    steps = np.arange(len(b) + 1)
    row = steps.copy()
    for i, c in enumerate(a, 1):
        new = np.empty_like(row)
        new[0] = i
        new[1:] = np.minimum(row[1:] + 1, row[:-1] + (y != ord(c)))
        row = np.minimum.accumulate(new - steps) + steps  # insertions along the row
    return int(row[-1])


def error_rate(refs: list[str], hyps: list[str]) -> float:
    """Character edit distance over reference characters (CER as a share)."""
    return sum(edit_distance(r, h) for r, h in zip(refs, hyps)) / max(1, sum(len(r) for r in refs))


def clean(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- decoding

def peaky_outputs(count: int, utt, vocab_size: int, seed: int, peak: float = 5.0,
                  token_share: float = 0.4):
    """CTC-like network outputs: per utterance (lengths from utt, 40 ms frames) a random frame
    path (blank, or a token at token_share of the frames) made the peak of noisy logits
    (peak 5 over unit noise: the best path misses ~1 % of the characters).
    Returns (log_probs (B, T, V), lengths, the paths' token ids, audio seconds)."""
    gen = torch.Generator().manual_seed(seed)
    seconds = durations(count, utt, gen)
    lengths = [output_frames(1 + int(s * SAMPLE_RATE) // HOP, 4) for s in seconds]
    logits = torch.randn(count, max(lengths), vocab_size, generator=gen)
    truth = []
    for b, n in enumerate(lengths):
        path = torch.zeros(n, dtype=torch.long)
        at = torch.randperm(n, generator=gen)[:max(1, int(token_share * n))]
        path[at] = torch.randint(1, vocab_size, (len(at),), generator=gen)
        logits[b, torch.arange(n), path] += peak
        ids = torch.unique_consecutive(path)
        truth.append(ids[ids != 0].tolist())
    return logits.log_softmax(-1), torch.tensor(lengths), truth, sum(seconds)


def cpu_reference_decoder(vocab, beam: int):
    """(name, decode(log_probs, lengths) -> texts): the project's CPU beam search
    (flashlight-text, lexicon-free, no LM; log_add, summing the paths of a prefix as the CUDA
    decoder does), or greedy when flashlight-text is not installed."""
    try:
        importlib.import_module("asr.decoding.beam")  # needs flashlight-text
    except ImportError as e:
        return f"greedy (CPU; no beam search: {e})", lambda lp, n: greedy_decode(lp, n, vocab)
    from asr.decoding.decoders import DECODERS
    cfg = DecodeConfig(decoder="beam", beam_size=beam, log_add=True)

    def decode(log_probs, lengths):
        return [h["text"] for h in DECODERS["beam"].decode(log_probs, lengths, vocab, cfg)]
    return f"beam (CPU, flashlight, lexicon-free, no LM, log_add, beam {beam})", decode


def cuda_decode(log_probs, lengths, vocab, beam: int, device: torch.device, repeats: int = 3):
    """torchaudio's CUDA CTC beam search (cuda_ctc_decoder, blank 0) on log-probs already on
    the device: (texts, median seconds of `repeats` decodes after a warm-up one)."""
    from torchaudio.models.decoder import cuda_ctc_decoder
    decoder = cuda_ctc_decoder(list(vocab.tokens), nbest=1, beam_size=beam)
    lp = log_probs.to(device).contiguous()
    lens = lengths.to(device=device, dtype=torch.int32)
    decoder(lp, lens)  # allocates its workspace
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        hyps = decoder(lp, lens)
        sync(device)
        times.append(time.perf_counter() - t0)
    texts = [clean(vocab.decode([int(t) for t in h[0].tokens])) for h in hyps]
    return texts, statistics.median(times)


def decoders(utt, count: int, beam: int, device: torch.device, vocab, seed: int = 7,
             tolerance: float = 0.02) -> dict:
    """The CUDA CTC decoder's real-time factor (decoding only) and its agreement with the
    project's CPU decoder on the same peaky outputs, and both against the true paths."""
    log_probs, lengths, truth, audio = peaky_outputs(count, utt, len(vocab), seed)
    truth_texts = [clean(vocab.decode(ids)) for ids in truth]
    name, decode = cpu_reference_decoder(vocab, beam)
    t0 = time.perf_counter()
    ref = [clean(t) for t in decode(log_probs, lengths)]
    result = {"kind": "decoder", "utterances": count, "audio_s": audio, "reference": name,
              "reference_rtf": (time.perf_counter() - t0) / audio,
              "reference_cer_vs_truth": error_rate(truth_texts, ref)}
    if device.type != "cuda":
        return {**result, "cuda_decoder": "skipped: no CUDA"}
    texts, seconds = cuda_decode(log_probs, lengths, vocab, beam, device)
    disagreement = error_rate(ref, texts)
    return {**result, "cuda_decoder": f"torchaudio cuda_ctc_decoder, beam {beam}",
            "cuda_rtf": seconds / audio, "cuda_cer_vs_truth": error_rate(truth_texts, texts),
            "same_text_share": sum(a == b for a, b in zip(ref, texts)) / count,
            "disagreement_cer": disagreement, "tolerance": tolerance,
            "pass": disagreement <= tolerance}
