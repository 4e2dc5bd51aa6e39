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

    Batches are re-formed every epoch, seeded by (seed, epoch): fixed batches would repeat the
    same gradient noise every epoch; these vary yet are reproducible. Utterances are sorted by
    length, each moved by a random number of places up to `jitter` batches' worth (neighbours
    of near-equal length mix, so every batch changes while padding barely grows, unlike a
    jitter on the lengths themselves), then cut in that order whenever the next one would
    exceed batch_frames padded frames (longest * count) or max_batch_utts. With sortagrad,
    epoch 0 is the plain length order, shortest first, unshuffled (as is the dev sampler).

    One update takes G = world_size * multiple_of batches (multiple_of: gradient-accumulation
    steps). Consecutive batches of the length order form groups of G, the groups are shuffled
    (not in a sortagrad epoch 0), and micro-batch j of rank r is batch j * world_size + r of
    its group: the ranks of one step get similar lengths (little waiting at the all-reduce),
    and an update is the same however it is split into ranks and accumulation steps. To make
    whole groups, the batches with the most utterances are halved (nothing lost or repeated);
    only with too few utterances for that are batches repeated to fill the last group. Every
    rank gets per_rank batches, a multiple of multiple_of, disjoint from the other ranks';
    per_rank is that of the epoch set last and may differ by a few between epochs.
    set_epoch(epoch, start_batch) skips the batches already trained, for exact resume.
    """

    def __init__(self, lengths: list[int], batch_frames: int, max_batch_utts: int = 64,
                 seed: int = 0, sortagrad: bool = True, rank: int = 0, world_size: int = 1,
                 multiple_of: int = 1, bucketing: bool = True, jitter: float = 2.0):
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_frames, self.max_batch_utts = batch_frames, max_batch_utts
        self.seed, self.sortagrad, self.bucketing, self.jitter = seed, sortagrad, bucketing, jitter
        self.rank, self.world_size, self.multiple_of = rank, world_size, multiple_of
        self.sorted = np.lexsort((np.arange(len(self.lengths)), self.lengths))
        self.per_batch = len(self.lengths) / max(1, len(self._cut(self.sorted.tolist())))
        self._formed = None
        self.set_epoch(0)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch
        if self._formed != epoch:
            self.batches, self._mine = self._form(epoch)
            self._formed, self.per_rank = epoch, len(self._mine)

    def _form(self, epoch: int) -> tuple[list[list[int]], list[list[int]]]:
        """(all ranks' batches in length order, this rank's batches in epoch order)."""
        rng = np.random.default_rng([self.seed % 2**32, epoch])
        n = len(self.lengths)
        first = self.sortagrad and epoch == 0
        if not self.bucketing:  # random composition (for benchmarks: what bucketing saves)
            order = rng.permutation(n)
        elif first or not self.jitter:
            order = self.sorted
        else:
            moved = np.arange(n) + rng.random(n) * (self.jitter * self.per_batch)
            order = self.sorted[np.argsort(moved, kind="stable")]
        batches = self._cut(order.tolist())
        W, G = self.world_size, self.world_size * self.multiple_of
        self._fill_groups(batches, G)
        groups = [batches[g:g + G] for g in range(0, len(batches), G)]
        if not first:
            groups = [groups[g] for g in rng.permutation(len(groups))]
        mine = [group[j * W + self.rank] for group in groups for j in range(self.multiple_of)]
        return batches, mine

    def _cut(self, order: list[int]) -> list[list[int]]:
        """Cut utterances, in this order, into batches within batch_frames and max_batch_utts
        (an utterance longer than batch_frames is a batch of its own)."""
        lengths = self.lengths.tolist()
        batches: list[list[int]] = []
        batch: list[int] = []
        longest = 0
        for i in order:
            candidate = max(longest, lengths[i])
            if batch and (candidate * (len(batch) + 1) > self.batch_frames
                          or len(batch) >= self.max_batch_utts):
                batches.append(batch)
                batch, candidate = [], lengths[i]
            batch.append(i)
            longest = candidate
        if batch:
            batches.append(batch)
        return batches

    @staticmethod
    def _fill_groups(batches: list[list[int]], G: int) -> None:
        """Make len(batches) a multiple of G (in place): halve the batch with the most
        utterances (the first such) while any has two; then repeat batches from the start."""
        need = -len(batches) % G
        while need:
            k = max(range(len(batches)), key=lambda i: len(batches[i]))
            if len(batches[k]) < 2:
                break
            b = batches[k]
            batches[k:k + 1] = [b[:len(b) // 2], b[len(b) // 2:]]
            need -= 1
        batches.extend(batches[i % len(batches)] for i in range(need))

    def epoch_batches(self) -> list[list[int]]:
        """This rank's batches of the epoch set last, from its first batch."""
        return self._mine

    def __iter__(self):
        return iter(self._mine[self.start_batch:])

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
