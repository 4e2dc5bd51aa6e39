"""Degraded test sets (data_prep/degrade.py) and augmentation wired into training data."""

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.data import effects as A
from asr.data.augment import Augmenter
from asr.config import AugmentConfig
from asr.data.store import FeatureStore, open_store
from asr.data.dataset import AsrDataset
from asr.text.vocab import CharVocab
from asr.train import Trainer
from data_prep.degrade import degrade, make_degraded

from conftest import small_config


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    return 10 * math.log10(np.mean(clean.astype(np.float64) ** 2)
                           / np.mean((noisy.astype(np.float64) - clean) ** 2))


@pytest.mark.parametrize("condition,target", [("noise10", 10.0), ("noise0", 0.0)])
def test_noisy_sets_have_the_named_snr(tone_corpus, condition, target):
    path = make_degraded(tone_corpus, "test", condition, seed=3, nj=1, progress=False)
    src = [json.loads(l) for l in open(tone_corpus / "manifests" / "test.jsonl")]
    out = [json.loads(l) for l in open(path)]
    assert [e["id"] for e in out] == [e["id"] for e in src]
    assert [e["text"] for e in out] == [e["text"] for e in src]
    for s, o in zip(src, out):
        clean, _ = sf.read(tone_corpus / "manifests" / s["audio_filepath"], dtype="float32")
        noisy, sr = sf.read(path.parent / o["audio_filepath"], dtype="float32")
        assert sr == 16000 and len(noisy) == len(clean)
        assert abs(o["duration"] - s["duration"]) < 1e-3
        # a peak-limited clip is scaled as a whole: compare against the clean clip scaled alike
        scale = np.dot(noisy, clean) / np.dot(clean, clean) if target > 5 else None
        ref = clean * (scale if scale else 1.0)
        if target > 5:
            assert abs(snr_db(ref, noisy) - target) < 0.5


def test_zero_db_noise_matches_at_the_waveform_level():
    g = torch.Generator().manual_seed(0)
    clean = 0.1 * torch.sin(torch.arange(16000) * 0.05)
    noisy = degrade(clean, "noise0", g)
    assert abs(snr_db(clean.numpy(), noisy.numpy()) - 0.0) < 0.5


def test_telephone_set_removes_the_high_band_and_reverb_smears(tone_corpus):
    rng = np.random.default_rng(1)
    wav = torch.from_numpy(rng.standard_normal(16000).astype(np.float32) * 0.1)
    tel = degrade(wav, "telephone", torch.Generator().manual_seed(0))
    spec = np.abs(np.fft.rfft(tel.numpy())) ** 2
    freqs = np.fft.rfftfreq(len(tel), 1 / 16000)
    assert spec[freqs > 4200].sum() < 1e-3 * spec[(freqs > 500) & (freqs < 3000)].sum()
    impulse = torch.zeros(16000)
    impulse[100] = 0.5
    rev = degrade(impulse, "reverb", torch.Generator().manual_seed(0))
    assert len(rev) == len(impulse) and (rev[2000:].abs() > 1e-4).sum() > 1000  # a tail


def test_degraded_sets_are_deterministic_and_resumable(tone_corpus, tmp_path):
    import shutil
    other = tmp_path / "copy"
    shutil.copytree(tone_corpus, other)
    a = make_degraded(tone_corpus, "test", "reverb", seed=0, nj=1, progress=False)
    b = make_degraded(other, "test", "reverb", seed=0, nj=2, progress=False)
    files_a = sorted((tone_corpus / "audio" / "test_reverb").glob("*.wav"))
    files_b = sorted((other / "audio" / "test_reverb").glob("*.wav"))
    assert [f.read_bytes() for f in files_a] == [f.read_bytes() for f in files_b]
    assert a.read_text() == b.read_text()
    mtimes = [f.stat().st_mtime_ns for f in files_a]
    make_degraded(tone_corpus, "test", "reverb", seed=0, nj=1, progress=False)  # skips
    assert [f.stat().st_mtime_ns for f in files_a] == mtimes


def test_unreadable_source_is_skipped_and_counted(tone_corpus, caplog):
    caplog.set_level("INFO", logger="data_prep.degrade")
    (tone_corpus / "audio" / "test" / "test002.wav").write_bytes(b"RIFF broken")
    path = make_degraded(tone_corpus, "test", "telephone", nj=1, progress=False)
    ids = [json.loads(l)["id"] for l in open(path)]
    assert "test002" not in ids and len(ids) == 7
    assert "test_telephone: 7 utterances" in caplog.text and "1 skipped" in caplog.text
    assert "test002.wav: cannot decode audio" in caplog.text  # names the file and the problem
    with pytest.raises(ValueError, match="unknown degradation"):
        make_degraded(tone_corpus, "test", "underwater")


def test_files_of_utterances_that_left_the_source_split_are_deleted(tone_corpus):
    make_degraded(tone_corpus, "test", "telephone", nj=1, progress=False)
    manifest = tone_corpus / "manifests" / "test.jsonl"
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(lines[2:]) + "\n")  # test000, test001 leave the split
    (tone_corpus / "audio" / "test_telephone" / ".test005.wav.99.tmp").write_bytes(b"killed")
    make_degraded(tone_corpus, "test", "telephone", nj=1, progress=False)
    files = sorted(p.name for p in (tone_corpus / "audio" / "test_telephone").iterdir())
    assert files == [f"test{i:03d}.wav" for i in range(2, 8)]


def test_prepare_makes_the_configured_degraded_splits(tone_corpus, tmp_path):
    from data_prep.prepare import make_degraded_splits
    cfg = small_config(tone_corpus, tmp_path / "exp")
    cfg.data.degraded, cfg.data.nj = ["noise10", "telephone"], 1
    make_degraded_splits(cfg)
    for name in ("test_noise10", "test_telephone"):
        assert (tone_corpus / "manifests" / f"{name}.jsonl").exists()


def _dataset(store, augment, seed=0):
    return AsrDataset(store, CharVocab(), 2, 0.0, "train", augment, seed)


def test_dataset_augmentation_is_seeded_per_epoch_and_utterance(tone_corpus, tone_store):
    cfg = AugmentConfig(noise_prob=1.0, snr_min=5, snr_max=5, noise_types=["white"],
                        specaugment=True)
    store = open_store(tone_corpus, "train", small_config(tone_corpus, "x").features,
                       need_audio=True)
    ds = _dataset(store, Augmenter(cfg))
    plain = torch.from_numpy(store.features(ds.keep[0]))
    first = ds[0][0]
    assert first.shape == plain.shape and not torch.allclose(first, plain)
    assert torch.equal(_dataset(store, Augmenter(cfg))[0][0], first)  # same seed/epoch
    ds.epoch = 1
    assert not torch.equal(ds[0][0], first)  # new draws each epoch
    # SpecAugment alone runs on stored features; waveform effects refuse them
    fstore = FeatureStore(tone_store / "features" / "train")
    spec_only = _dataset(fstore, Augmenter(AugmentConfig(specaugment=True, freq_width=20)))
    masked = spec_only[0][0]
    assert masked.shape == torch.from_numpy(fstore.features(spec_only.keep[0])).shape
    with pytest.raises(ValueError, match="needs the audio"):
        _dataset(fstore, Augmenter(cfg))


def test_training_with_augmentation_in_workers(tone_corpus, tone_store, tmp_path, caplog):
    """Waveform effects switch the training split to on-the-fly features (dev keeps the store);
    two DataLoader workers give the batches one process gives."""
    import logging
    caplog.set_level(logging.INFO)
    cfg = small_config(tone_store, tmp_path / "aug", epochs=2, max_steps=3)
    cfg.augment.noise_prob, cfg.augment.speed_factors = 0.5, [0.9, 1.0, 1.1]
    cfg.augment.specaugment = True
    trainer = Trainer(cfg)
    assert type(trainer.data.dataset.store).__name__ == "OnTheFlyStore"
    assert type(trainer.dev_set.store).__name__ == "FeatureStore"
    assert "augmentation: SpecAugment, speed" in caplog.text and "babble" in caplog.text
    one = next(iter(trainer.data))
    cfg.train.num_workers = 2
    two = next(iter(Trainer(cfg).data))
    assert one[4] == two[4] and torch.allclose(one[0], two[0], atol=1e-3)  # threads differ
    assert trainer.train()["step"] == 3


def test_specaugment_with_features_on_device(tone_corpus, tmp_path):
    cfg = small_config(tone_corpus, tmp_path / "dev", epochs=1, max_steps=2)
    cfg.features.on_the_fly = cfg.features.on_device = True
    cfg.augment.specaugment = True
    trainer = Trainer(cfg)
    feats, lens, _, _, _ = next(iter(trainer.data))
    x, n = trainer.to_features(feats, lens)
    y = trainer.spec_augment_batch(x, n)
    assert y.shape == x.shape and not torch.equal(x, y)
    assert trainer.train()["step"] == 2
