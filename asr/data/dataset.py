"""Training batches: a Dataset over a feature store, a length-bucketing batch sampler, collation."""

from __future__ import annotations

import logging
from collections import Counter
from typing import NamedTuple

import numpy as np
import torch

from asr.data.audio import AudioError
from asr.data.effects import item_generator
from asr.data.store import FeatureStore
from asr.model import output_frames
from asr.text.vocab import Vocab, ctc_min_frames

log = logging.getLogger(__name__)


class AsrDataset(torch.utils.data.Dataset):
    """Utterances of a store that can be trained on: (features (T, F), label ids, id).

    Entries are dropped, with a count per reason logged, when the duration exceeds max_duration,
    the text is empty or has characters outside the vocabulary, or the label is longer than the
    subsampled frames (CTC could not emit it).

    augment: an asr.data.augment.Augmenter applied to every item (waveform effects need an
        OnTheFlyStore; SpecAugment works on any store). Its draws come from a generator seeded
        by (seed, epoch, utterance index): the same in every DataLoader worker and on resume,
        new each epoch (set `epoch` before iterating).
    """

    def __init__(self, store: FeatureStore, vocab: Vocab, subsample: int = 4,
                 max_duration: float = 0.0, name: str = "data", augment=None, seed: int = 0):
        self.store, self.vocab = store, vocab
        if augment is not None and augment.cfg.wave_active and not hasattr(store, "audio"):
            raise ValueError(f"{name}: waveform augmentation needs the audio (an on-the-fly "
                             f"store), not the feature store at {store.path}")
        self.augment, self.seed, self.epoch = augment, seed, 0
        dropped: Counter = Counter()
        self.keep: list[int] = []
        for i, e in enumerate(store.entries):
            reason = self._reject(e, vocab, subsample, max_duration)
            if reason:
                dropped[reason] += 1
            else:
                self.keep.append(i)
        self.dropped = dict(dropped)
        self.unreadable: set[str] = set()
        if dropped:
            log.info("%s: kept %d of %d utterances; dropped %s", name, len(self.keep),
                     len(store), ", ".join(f"{n} {r}" for r, n in dropped.items()))
        if not self.keep:
            raise ValueError(f"{name} ({store.path}): no usable utterances; dropped {self.dropped}")

    @staticmethod
    def _reject(e: dict, vocab: Vocab, subsample: int, max_duration: float) -> str | None:
        if max_duration and e["duration"] > max_duration:
            return "longer than max_duration"
        if not e["text"]:
            return "empty transcript"
        if not vocab.covers(e["text"]):
            return "characters outside the vocabulary"
        if ctc_min_frames(vocab.encode(e["text"])) > output_frames(e["frames"], subsample):
            return "label longer than subsampled frames"
        return None

    def __len__(self) -> int:
        return len(self.keep)

    def frames(self, i: int) -> int:
        return self.store.entries[self.keep[i]]["frames"]

    def __getitem__(self, i: int):
        j = self.keep[i]
        e = self.store.entries[j]
        try:
            feats = torch.from_numpy(self.load(j))
        except AudioError as err:  # on-the-fly features: a broken file is skipped, not fatal
            if e["id"] not in self.unreadable:
                self.unreadable.add(e["id"])
                log.warning("skipped: %s", err)
            return None
        return feats, torch.tensor(self.vocab.encode(e["text"]), dtype=torch.long), e["id"]

    def load(self, j: int) -> np.ndarray:
        """Features of store entry j, augmented when an augmenter is set."""
        if self.augment is None:
            return self.store.features(j)
        g = item_generator(self.seed, self.epoch, j)
        if self.augment.cfg.wave_active:
            feats = self.store.featurize(self.augment(self.store.audio(j), g))
        else:
            feats = self.store.features(j)
        if getattr(self.store, "raw_audio", False):
            return feats  # waveforms: SpecAugment runs on the device after featurisation
        return self.augment.spec_augment(torch.from_numpy(np.ascontiguousarray(feats)), g).numpy()


class BucketingBatchSampler(torch.utils.data.Sampler):
    """Batches of similar-length utterances holding at most batch_frames padded frames.

    Utterances are sorted by length and cut into batches (dynamic batch size), so padding is
    small. Each epoch shuffles the order of batches with (seed, epoch); with sortagrad the first
    epoch goes shortest first. With world_size > 1 every rank gets the same number of batches
    (rank r takes batches r, r+W, ...; the tail is dropped), a multiple of `multiple_of` (the
    gradient-accumulation steps, so no partial update is left over). start_batch skips batches
    already trained in this epoch, for exact resume.
    """

    def __init__(self, lengths: list[int], batch_frames: int, max_batch_utts: int = 64,
                 seed: int = 0, sortagrad: bool = True, rank: int = 0, world_size: int = 1,
                 multiple_of: int = 1, bucketing: bool = True):
        if bucketing:
            order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
        else:  # random composition (for benchmarks: shows what bucketing saves in padding)
            order = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(seed)).tolist()
        self.batches: list[list[int]] = []
        batch: list[int] = []
        longest = 0
        for i in order:
            candidate = max(longest, lengths[i])
            if batch and (candidate * (len(batch) + 1) > batch_frames or len(batch) >= max_batch_utts):
                self.batches.append(batch)
                batch, candidate = [], lengths[i]
            batch.append(i)
            longest = candidate
        if batch:
            self.batches.append(batch)
        self.seed, self.sortagrad = seed, sortagrad
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start_batch = 0, 0
        self.per_rank = len(self.batches) // world_size // multiple_of * multiple_of

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def epoch_batches(self) -> list[list[int]]:
        if self.sortagrad and self.epoch == 0:
            order = list(range(len(self.batches)))
        else:
            g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
            order = torch.randperm(len(self.batches), generator=g).tolist()
        mine = order[self.rank::self.world_size][:self.per_rank]
        return [self.batches[i] for i in mine]

    def __iter__(self):
        return iter(self.epoch_batches()[self.start_batch:])

    def __len__(self) -> int:
        return self.per_rank - self.start_batch


class Batch(NamedTuple):
    """A padded training batch (what collate returns and the training loop reads)."""

    feats: torch.Tensor          # (B, T, F) features, or (B, samples) waveforms (features.on_device)
    feat_lens: torch.Tensor      # (B,) valid frames (samples) of each
    targets: torch.Tensor        # (B, L) label ids, zero-padded
    target_lens: torch.Tensor    # (B,) label lengths
    ids: list[str]               # utterance ids


def collate(items) -> Batch | None:
    """[(feats (T,F), labels (L,), id)] -> a padded Batch; None when every item was unreadable."""
    items = [it for it in items if it is not None]  # unreadable audio (on-the-fly features)
    if not items:
        return None
    feats, labels, ids = zip(*items)
    feat_lens = torch.tensor([len(f) for f in feats])
    label_lens = torch.tensor([len(y) for y in labels])
    padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    targets = torch.nn.utils.rnn.pad_sequence(labels, batch_first=True)
    return Batch(padded, feat_lens, targets, label_lens, list(ids))
