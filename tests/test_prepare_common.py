"""Shared pieces of the corpus-import tests (imported by tests/test_prepare_*.py), and tests of
data_prep.common itself: the streaming pool, stride splits, summary, source archives."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.config import apply
from conftest import small_config, tone_utterance

WORDS = ["ab", "cd", "ef", "abc", "fed"]


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 3)))) for _ in range(n)]


def tone(text: str, sr: int = 16000, seed: int = 0) -> np.ndarray:
    return tone_utterance(text, np.random.default_rng(seed), sr)


def corpus_config(tmp_path: Path, corpus: str, source, **data):
    """small_config (tiny model, tone corpus settings) for importing `corpus` from source."""
    root = tmp_path / "data"
    cfg = small_config(root, tmp_path / "exp", epochs=2, max_steps=2, log_every=1, batch_frames=400,
                       threads=1)
    apply(cfg, {"data": {"corpus": corpus, "source": str(source), "nj": 1, "dev_split": "dev",
                         "test_splits": ["test"], **data}})
    return cfg


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line]


def pipeline(cfg, expect: dict[str, int] | None = None):
    """asr prepare -> features -> 2 training steps -> greedy decode of the first test split.
    expect: {split: usable utterances}. Returns (summary, hypotheses)."""
    import torch

    from asr.data.store import FeatureStore
    from asr.decoding.decoders import decode_store
    from data_prep.prepare import run_prepare
    from asr.train import Trainer
    from asr.data.store import extract_features
    summary = run_prepare(cfg, progress=False)
    root = Path(cfg.data.root)
    for split, n in (expect or {}).items():
        assert summary.splits[split][0] == n, (split, summary.lines())
        assert len(read_jsonl(root / "manifests" / f"{split}.jsonl")) == n
    splits = dict.fromkeys([cfg.data.train_split, cfg.data.dev_split, *cfg.data.test_splits])
    for split in splits:
        extract_features(root / "manifests" / f"{split}.jsonl", root / "features" / split,
                         cfg.features, nj=1, progress=False)
    trainer = Trainer(cfg)
    assert trainer.train()["step"] == 2
    test = cfg.data.test_splits[0]
    store = FeatureStore(root / "features" / test)
    hyps = decode_store(trainer.model, trainer.vocab, store, torch.device("cpu"))
    assert len(hyps) == len(store) > 0 and all(isinstance(h["text"], str) for h in hyps)
    return summary, hyps


# --- tests of data_prep.common -----------------------------------------------------------------

def _square(item, arg):
    return [item * item + arg] * (item % 3)  # 0, 1 or 2 results per item


def test_pool_map_streams_in_order_with_several_results_per_item():
    from asr.utils import pool_map
    want = [r for i in range(200) for r in _square(i, 1)]
    consumed = []

    def items():
        for i in range(200):
            consumed.append(i)
            yield i

    got = pool_map(_square, items(), 1, nj=2, chunk=4)
    first = next(got)
    assert first == want[0]
    assert len(consumed) < 200  # lazily consumed: bounded work in flight
    assert [first, *got] == want
    assert list(pool_map(_square, range(20), 1, nj=1)) == [r for i in range(20) for r in _square(i, 1)]


def test_stride_split_fractions_are_spread_and_exact():
    from data_prep.common import stride_split
    splits = [stride_split(i, 0.1, 0.05) for i in range(1000)]
    assert abs(splits.count("dev") - 100) <= 3 and abs(splits.count("test") - 50) <= 3
    small = [stride_split(i, 0.2, 0.2) for i in range(10)]
    assert small.count("dev") == 2 and small.count("test") == 2
    assert [stride_split(i, 0.0, 0.0) for i in range(5)] == ["train"] * 5


def test_text_far_too_short_for_its_audio_is_rejected(tmp_path):
    """min_letters_per_second: a 3-second clip labelled "ab" is likely the wrong transcript."""
    from asr.data.checks import TOO_SHORT, Checks, probe
    sr = 16000
    wav = tmp_path / "long.wav"
    sf.write(wav, np.concatenate([tone("ab", sr), np.zeros(3 * sr, np.float32)]), sr, subtype="PCM_16")
    item = {"id": "u1", "audio": str(wav), "text": "ab"}
    assert probe(item, Checks())[0][0] == "ok"  # off by default
    bad = probe(item, Checks(min_letters_per_second=1.5))[0]
    assert bad[0] == "bad" and bad[2] == TOO_SHORT and "2 letters in" in bad[3]
    assert probe(dict(item, text="abc fed abc fed"), Checks(min_letters_per_second=1.5))[0][0] == "ok"


def test_probe_audio_reasons(tmp_path):
    from asr.data import checks as common
    sr = 16000
    good = tmp_path / "good.wav"
    sf.write(good, tone("ab", sr), sr, subtype="PCM_16")
    sf.write(tmp_path / "silent.wav", np.zeros(sr, np.float32), sr, subtype="PCM_16")
    sf.write(tmp_path / "nan.wav", np.full(100, np.nan, np.float32), sr, subtype="FLOAT")
    data = good.read_bytes()
    (tmp_path / "truncated.wav").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.wav").write_bytes(b"RIFF\x00\x01junk" * 8)
    (tmp_path / "dir.wav").mkdir()
    sf.write(tmp_path / "stereo44.flac", np.stack([tone("ab", 44100)] * 2, 1), 44100)
    expect = {"good.wav": None, "stereo44.flac": None, "silent.wav": common.SILENT,
              "nan.wav": common.NON_FINITE, "truncated.wav": common.TRUNCATED,
              "junk.wav": common.UNDECODABLE, "dir.wav": common.NOT_A_FILE,
              "missing.wav": common.MISSING}
    for name, kind in expect.items():
        duration, got, detail = common.probe_audio(tmp_path / name)
        assert got == kind, (name, got, detail)
        assert (duration is None) == (kind is not None)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")
def test_debian_package_source_is_extracted_once(tmp_path):
    """A .deb (apt-get download) given as data.source is unpacked with dpkg-deb under
    <root>/download/<name>/, once: a stamp marks the finished extraction."""
    from data_prep.common import source_dir
    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text("Package: game-data\nVersion: 1.0\nArchitecture: all\n"
                                            "Maintainer: t <t@example.org>\nDescription: test\n")
    (pkg / "usr" / "share" / "game").mkdir(parents=True)
    (pkg / "usr" / "share" / "game" / "voice.txt").write_text("hello")
    deb = tmp_path / "game-data_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(pkg), str(deb)], check=True,
                   capture_output=True)
    cfg = corpus_config(tmp_path, "queen", deb)
    out = source_dir(cfg, "queen")
    assert out == tmp_path / "data" / "download" / "game-data_1.0_all"
    assert (out / "usr" / "share" / "game" / "voice.txt").read_text() == "hello"
    (out / "usr" / "share" / "game" / "voice.txt").write_text("kept")
    assert source_dir(cfg, "queen") == out and (out / "usr/share/game/voice.txt").read_text() == "kept"


def test_source_archive_is_extracted_safely_and_escapes_refused(tmp_path):
    """An archive given as data.source is extracted under <root>/download; a member like
    ../../evil or /abs/path is refused before anything is written."""
    from asr.data.archive import UnsafeArchiveError
    from data_prep.common import source_dir
    good = tmp_path / "corpus.tar.gz"
    with tarfile.open(good, "w:gz") as tf:
        info = tarfile.TarInfo("corpus/a.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"hi"))
    cfg = corpus_config(tmp_path, "folder", good)
    out = source_dir(cfg, "folder")
    assert (out / "corpus" / "a.txt").read_text() == "hi"
    for name in ("../../evil", "/tmp/evil_abs_member"):
        bad = tmp_path / "bad.tar.gz"
        with tarfile.open(bad, "w:gz") as tf:
            info = tarfile.TarInfo(name)
            info.size = 4
            tf.addfile(info, io.BytesIO(b"evil"))
        cfg = corpus_config(tmp_path, "folder", bad)
        with pytest.raises(UnsafeArchiveError):
            source_dir(cfg, "folder")
        assert not (tmp_path / "evil").exists() and not (tmp_path.parent / "evil").exists()
        assert not Path("/tmp/evil_abs_member").exists()


@pytest.mark.parametrize("recipe", ["librispeech_100", "librispeech_960", "commonvoice",
                                    "ljspeech", "timit"])
def test_recipe_configs_load(recipe):
    from asr.config import load_config
    from data_prep.prepare import CORPORA
    cfg = load_config(Path(__file__).resolve().parents[1] / "recipes" / recipe / "config.yaml")
    assert cfg.data.corpus in CORPORA and cfg.data.units in ("char", "phone")
    assert (Path(__file__).resolve().parents[1] / "recipes" / recipe / "README.md").exists()
