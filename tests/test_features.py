import json

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from asr.config import FeatureConfig
from asr.data.store import FeatureStore
from asr.data.features import FeatureExtractor
from asr.data.store import extract_features


def reference_fbank(wav: np.ndarray, sr=16000, n_mels=80, win=400, hop=160, n_fft=512):
    """Independent log-mel: numpy STFT (centred, reflect padding, periodic Hann window
    zero-padded to n_fft) and librosa's HTK mel filters."""
    window = np.zeros(n_fft)
    left = (n_fft - win) // 2
    window[left:left + win] = np.hanning(win + 1)[:-1]
    padded = np.pad(wav, n_fft // 2, mode="reflect")
    frames = 1 + len(wav) // hop
    spec = np.stack([np.abs(np.fft.rfft(padded[i * hop:i * hop + n_fft] * window)) ** 2
                     for i in range(frames)])
    mel = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, htk=True, norm=None, fmin=0, fmax=sr / 2)
    return np.log(np.maximum(spec @ mel.T, 1e-10))


def test_fbank_matches_reference_computation():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    wav = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    ours = FeatureExtractor(FeatureConfig())(torch.from_numpy(wav))
    assert ours.shape == (101, 80) and ours.dtype == torch.float32
    ref = reference_fbank(wav.astype(np.float64))
    assert np.abs(ours.numpy() - ref).max() < 1e-2


def test_spectrogram_option_shape():
    fe = FeatureExtractor(FeatureConfig(kind="spectrogram"))
    out = fe(torch.randn(8000))
    assert out.shape == (51, 257) and fe.dim == 257


def test_bad_kind_is_refused():
    with pytest.raises(ValueError, match="fbank"):
        FeatureExtractor(FeatureConfig(kind="mfcc"))


@pytest.mark.parametrize("nj", [1, 2])
def test_store_roundtrip_cmvn_and_resume(tone_corpus, tmp_path, nj, caplog):
    manifest = tone_corpus / "manifests" / "train.jsonl"
    # One broken file among good ones: skipped, named, counted.
    (tone_corpus / "audio" / "train" / "train000.wav").write_bytes(b"RIFF garbage")
    out = tmp_path / "store"
    meta = extract_features(manifest, out, FeatureConfig(), nj=nj, chunk_utts=10, progress=False)
    assert meta["utterances"] == 47 and meta["skipped"] == 1
    assert "train000.wav" in meta["skipped_files"][0]
    store = FeatureStore(out)
    assert len(store) == 47 and len(list(out.glob("shard-*.npy"))) == 5
    fe = FeatureExtractor(FeatureConfig())
    entry = store.entries[5]
    wav, _ = sf.read(entry["audio_filepath"], dtype="float32")
    expected = fe(torch.from_numpy(wav)).numpy()
    got = store.features(5)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.allclose(got, expected, atol=0.02)  # float16 storage
    mean, std = store.cmvn()
    allf = np.concatenate([store.features(i) for i in range(len(store))])
    assert np.allclose(mean, allf.mean(0), atol=1e-3) and np.allclose(std, allf.std(0), atol=1e-3)
    # Resume: a deleted shard index means only that chunk is redone.
    (out / "shard-00002.jsonl").unlink()
    stamp = (out / "shard-00001.npy").stat().st_mtime_ns
    meta2 = extract_features(manifest, out, FeatureConfig(), nj=nj, chunk_utts=10, progress=False)
    assert meta2["utterances"] == 47 and (out / "shard-00001.npy").stat().st_mtime_ns == stamp
    # Different settings are refused rather than mixed into the same store.
    with pytest.raises(ValueError, match="other feature settings"):
        extract_features(manifest, out, FeatureConfig(n_mels=40), nj=nj, progress=False)


@pytest.mark.parametrize("rate, dtype", [(11025, torch.float32), (44100, torch.float64), (8000, torch.float32)])
def test_cached_resampler_equals_torchaudio(rate, dtype):
    """asr.data.audio.resample builds each rate pair's kernel once; its output is torchaudio's,
    on the first call and on a later one with another length."""
    import torchaudio.functional as AF
    from asr.data.audio import resample
    for n in (rate, rate // 3 + 7):
        x = torch.randn(n, dtype=dtype)
        y = resample(x, rate, 16000)
        assert y.dtype == dtype and torch.equal(y, AF.resample(x, rate, 16000))
    assert resample(x, 16000, 16000) is x


def test_store_of_an_older_manifest_is_rebuilt_not_kept(tone_corpus, tmp_path, caplog):
    """Data prepared again (other hours, subsets, channel_share) gives a new manifest: its store
    is rebuilt by `asr features`, and until then opening it is refused, never silently stale."""
    from asr.data.store import open_store
    manifest = tone_corpus / "manifests" / "train.jsonl"
    out = tone_corpus / "features" / "train"
    extract_features(manifest, out, FeatureConfig(), nj=1, chunk_utts=10, progress=False)
    assert len(open_store(tone_corpus, "train", FeatureConfig())) == 48
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(lines[:15]) + "\n")  # fewer hours: chunks 0 and 1 change
    with pytest.raises(ValueError, match="stale: .*train.jsonl has changed"):
        open_store(tone_corpus, "train", FeatureConfig())
    meta = extract_features(manifest, out, FeatureConfig(), nj=1, chunk_utts=10, progress=False)
    assert meta["utterances"] == 15 and "rebuilt from scratch" in caplog.text
    store = open_store(tone_corpus, "train", FeatureConfig())
    assert [e["id"] for e in store.entries] == [json.loads(x)["id"] for x in lines[:15]]
    assert len(list(out.glob("shard-*.npy"))) == 2


def test_a_missing_data_folder_is_named(tmp_path):
    from asr.data.store import open_store
    with pytest.raises(FileNotFoundError, match="no such data folder"):
        open_store(tmp_path / "nowhere", "train", FeatureConfig())
