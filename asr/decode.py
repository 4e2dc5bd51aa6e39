"""Decoding: CTC greedy search over a feature store or over single utterances."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .text import CharVocab


def greedy_ids(log_probs: torch.Tensor, length: int, blank: int = 0) -> list[int]:
    """Best path: argmax per frame, merge repeats, drop blanks."""
    best = log_probs[:length].argmax(dim=-1)
    best = torch.unique_consecutive(best)
    return [int(i) for i in best if i != blank]


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, vocab: CharVocab) -> list[str]:
    """Batch (B, T, V) log-probabilities -> texts."""
    return [" ".join(vocab.decode(greedy_ids(lp, int(n), vocab.blank)).split())
            for lp, n in zip(log_probs, lengths)]


@torch.no_grad()
def decode_store(model, vocab: CharVocab, store, device: torch.device,
                 batch_frames: int = 20000) -> list[dict]:
    """Greedy-decode every utterance of a FeatureStore; returns [{"id", "text"}] in store order."""
    model.eval()
    order = sorted(range(len(store)), key=lambda i: store.entries[i]["frames"])
    hyps: dict[int, str] = {}
    batch: list[int] = []

    def flush():
        feats = [torch.from_numpy(store.features(i)) for i in batch]
        lengths = torch.tensor([len(f) for f in feats])
        x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True).to(device)
        log_probs, out_lens = model(x, lengths.to(device))
        for i, text in zip(batch, greedy_decode(log_probs.cpu(), out_lens.cpu(), vocab)):
            hyps[i] = text

    for i in order:
        if batch and store.entries[i]["frames"] * (len(batch) + 1) > batch_frames:
            flush()
            batch = []
        batch.append(i)
    if batch:
        flush()
    return [{"id": store.entries[i]["id"], "text": hyps[i]} for i in range(len(store))]


def write_hyps(path: str | Path, hyps: list[dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for h in hyps:
            f.write(json.dumps(h, ensure_ascii=False) + "\n")
    tmp.replace(path)
