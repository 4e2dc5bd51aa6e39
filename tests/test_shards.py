"""Sharded streaming (asr.data.shards): tar shards written from a manifest are read back with
every sample once across ranks and loader workers, seeded, resumable, through URLs."""

import json

import numpy as np
import pytest
import torch

from asr.cli.main import main
from asr.config import FeatureConfig
from asr.data.audio import load_audio
from asr.data.dataset import collate
from asr.data.features import FeatureExtractor
from asr.data.manifest import read_manifest
from asr.data.shard_batches import bucket_batches, stream_batches
from asr.data.shard_writer import write_shards
from asr.data.shards import ShardDataset, split_skip
from asr.data.store import FeatureStore
from asr.text.vocab import make_vocab

VOCAB = make_vocab("char")


def manifest_ids(path) -> list[str]:
    return [e["id"] for e in read_manifest(path)]


def ids_of(dataset, num_workers: int = 0, epoch: int = 0, skip: int = 0) -> list[str]:
    """The ids one rank's DataLoader yields (None placeholders kept as None)."""
    dataset.set_epoch(epoch, skip)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=num_workers)
    return [None if it is None else it[2] for it in loader]


@pytest.fixture
def shards(tone_corpus, tmp_path):
    """The tone corpus's 48 training utterances in 5 shards of 10, 10, 10, 10 and 8."""
    index = write_shards(tone_corpus / "manifests" / "train.jsonl", tmp_path / "shards", max_count=10)
    assert [s["samples"] for s in index["shards"]] == [10, 10, 10, 10, 8]
    return tmp_path / "shards"


def test_every_sample_once_across_two_ranks_of_two_workers(tone_corpus, shards):
    everything = manifest_ids(tone_corpus / "manifests" / "train.jsonl")
    seen = []
    for rank in range(2):
        ds = ShardDataset(shards, VOCAB, subsample=2, rank=rank, world_size=2, seed=3)
        mine = ids_of(ds, num_workers=2, epoch=1)
        assert len(mine) == ds.rank_samples()
        seen += mine
    assert None not in seen
    assert sorted(seen) == sorted(everything) and len(set(seen)) == len(seen)


def test_items_are_what_the_feature_pipeline_makes(tone_corpus, shards):
    ds = ShardDataset(shards, VOCAB, subsample=2, shuffle_buffer=0, shuffle_shards=False)
    items = list(ds)
    first = next(read_manifest(tone_corpus / "manifests" / "train.jsonl"))
    feats, labels, uid = items[0]
    assert uid == first["id"] and feats.dtype == torch.float32
    expected = FeatureExtractor(FeatureConfig())(load_audio(first["audio_filepath"]))
    assert torch.allclose(feats, expected)
    assert VOCAB.decode(labels.tolist()) == first["text"]
    batch = collate(items[:4])
    assert batch.feats.shape[0] == 4 and batch.ids == [it[2] for it in items[:4]]
    index = json.loads((shards / "shards.json").read_text())
    assert index["samples"] == 48 and index["duration"] > 0 and len(index["cmvn"]["mean"]) == 80


def test_feature_store_shards_hold_the_stored_features(tone_store, tmp_path):
    store = FeatureStore(tone_store / "features" / "train")
    write_shards(tone_store / "manifests" / "train.jsonl", tmp_path / "f", features_store=store.path,
                 max_count=16)
    assert b"<f2" in (tmp_path / "f" / "shard-000000.tar").read_bytes()  # float16, as stored
    ds = ShardDataset(tmp_path / "f", VOCAB, subsample=2, shuffle_buffer=0, shuffle_shards=False)
    got = {uid: feats for feats, _, uid in ds}
    assert len(got) == len(store)
    for i in (0, 17, len(store) - 1):
        assert np.array_equal(got[store.entries[i]["id"]].numpy(), store.features(i))
    assert np.allclose(ds.cmvn()[0], store.cmvn()[0])


def test_shuffle_is_seeded_and_new_every_epoch(shards):
    ds = ShardDataset(shards, VOCAB, subsample=2, shuffle_buffer=16, seed=5)
    first, again, other = ids_of(ds, epoch=0), ids_of(ds, epoch=0), ids_of(ds, epoch=1)
    assert first == again and first != other and sorted(first) == sorted(other)
    assert ids_of(ShardDataset(shards, VOCAB, subsample=2, shuffle_buffer=16, seed=6)) != first


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_with_skip_gives_the_tail_of_the_stream(shards, workers):
    """With 2 workers the shards split 3 + 2, so the second worker runs dry first (after 40)."""
    ds = ShardDataset(shards, VOCAB, subsample=2, shuffle_buffer=8, seed=1)
    full = ids_of(ds, workers, epoch=2)
    for skip in (7, 8, 43):
        assert ids_of(ds, workers, epoch=2, skip=skip) == full[skip:]


def test_split_skip_follows_the_loaders_round_robin():
    assert split_skip(5, [3, 3]) == ([3, 2], 1)
    assert split_skip(4, [3, 3]) == ([2, 2], 0)
    assert split_skip(7, [2, 6]) == ([2, 5], 0)
    assert split_skip(100, [2, 6]) == ([2, 6], 0)
    assert split_skip(0, [4, 4]) == ([0, 0], 0)


def test_bucket_batches_keep_the_budget():
    items = [(torch.zeros(n, 2), torch.zeros(1), f"u{n}") for n in (50, 10, 40, 30, 20, 60, 45)]
    batches = list(bucket_batches(items + [None], batch_frames=100, sort_buffer=4))
    assert sorted(it[2] for b in batches for it in b) == sorted(it[2] for it in items)
    assert all(len(b) * max(len(it[0]) for it in b) <= 100 for b in batches)
    assert [[it[2] for it in b] for b in batches][:2] == [["u10", "u30"], ["u40", "u50"]]  # chunk 1


@pytest.mark.parametrize("workers", [0, 2])
def test_batches_resume_exactly(shards, workers):
    """Batches are made in the loader workers; a stop after 5 batches (or 2 before the end, when
    one worker has run dry) and a resume from the state give the uninterrupted epoch."""
    ds = ShardDataset(shards, VOCAB, subsample=2, shuffle_buffer=8, seed=2)
    kw = dict(batch_frames=400, epoch=1, num_workers=workers, sort_buffer=12)
    full = [b.ids for b in stream_batches(ds, **kw)]
    assert sorted(u for ids in full for u in ids) == sorted(ids_of(ds)) and len(full) > 8
    for stop in (5, len(full) - 2):
        stopped = stream_batches(ds, **kw)
        head = [b.ids for _, b in zip(range(stop), stopped)]  # takes `stop` batches, no more
        state = json.loads(json.dumps(stopped.state))  # as a checkpoint holds it
        assert head + [b.ids for b in stream_batches(ds, **kw, start=state)] == full


def test_reading_through_pipe_urls(tone_corpus, shards):
    url = f"pipe:cat {shards}/shard-{{000000..000004}}.tar"
    ds = ShardDataset(url, VOCAB, subsample=2, index=shards / "shards.json", rank=1, world_size=2)
    other = ShardDataset(url, VOCAB, subsample=2, index=shards / "shards.json", rank=0, world_size=2)
    seen = ids_of(ds, num_workers=2) + ids_of(other)
    assert sorted(seen) == sorted(manifest_ids(tone_corpus / "manifests" / "train.jsonl"))


def test_too_few_shards_for_the_readers_is_refused(shards):
    with pytest.raises(ValueError, match="every rank needs"):
        ShardDataset(shards, VOCAB, rank=0, world_size=6)
    ds = ShardDataset(shards, VOCAB, rank=0, world_size=2)  # 3 shards for rank 0
    with pytest.raises(ValueError, match="every worker needs"):
        next(ds.role_items(0, workers=4))  # what each of 4 loader workers would do


def test_unreadable_audio_is_skipped_and_counted(tone_corpus, tmp_path):
    (tone_corpus / "audio" / "train" / "train003.wav").write_bytes(b"RIFF broken")
    index = write_shards(tone_corpus / "manifests" / "train.jsonl", tmp_path / "s")
    assert index["samples"] == 47 and index["skipped"] == 1
    assert "train003.wav" in index["skipped_files"][0]
    assert "train003" not in ids_of(ShardDataset(tmp_path / "s", VOCAB, subsample=2))


def test_shard_command_writes_the_index(tone_corpus, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["shard", str(tone_corpus / "manifests" / "dev.jsonl"), str(out), "--max-count", "3"]) == 0
    index = json.loads((out / "shards.json").read_text())
    assert index["samples"] == 8 and [s["name"] for s in index["shards"]] == [
        "shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    assert "8 audio samples in 3 shards" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["shard-000000.tar", "shard-000001.tar",
                                                     "shard-000002.tar", "shards.json"]


def test_bench_times_loading_from_the_store_and_the_shards(tone_store, tmp_path):
    from asr.bench.train import run_loading
    write_shards(tone_store / "manifests" / "train.jsonl", tmp_path / "f", max_count=16,
                 features_store=tone_store / "features" / "train")
    overrides = [f"data.root={tone_store}", "data.test_splits=[test]", "model.rnn_layers=1",
                 "model.rnn_hidden=16", "model.subsample=2", "train.threads=2", "train.batch_frames=1500",
                 f"train.exp_dir={tmp_path / 'exp'}"]
    store = run_loading(None, overrides, steps=3, warmup=1, shards=None)
    shards = run_loading(None, overrides, steps=3, warmup=1, shards=str(tmp_path / "f"))
    assert store["store"] == "FeatureStore" and store["audio_s_per_s"] > 0 and shards["audio_s_per_s"] > 0
