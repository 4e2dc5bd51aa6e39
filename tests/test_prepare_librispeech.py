"""LibriSpeech: a miniature corpus in the real layout (FLAC + *.trans.txt per chapter, archives
per subset) -> asr prepare -> features -> training steps -> decode; download with checksums;
the librispeech_100 recipe end to end through `make demo`."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import soundfile as sf

from test_prepare_common import corpus_config, pipeline, read_jsonl, sentences, tone

REPO = Path(__file__).resolve().parents[1]
SUBSETS = {"train-clean-100": (2, 5), "dev-clean": (1, 3), "dev-other": (1, 2),
           "test-clean": (1, 3), "test-other": (1, 2)}  # speakers, utterances per chapter


def make_librispeech(base: Path, subsets=SUBSETS, lm: bool = True) -> Path:
    """base/LibriSpeech/<subset>/<speaker>/<chapter>/<spk>-<chap>-<nnnn>.flac + .trans.txt."""
    root = base / "LibriSpeech"
    spk_id = 19
    for k, (subset, (speakers, utts)) in enumerate(subsets.items()):
        for s in range(speakers):
            spk, chap = str(spk_id), str(198 + 10 * s)
            spk_id += 7
            d = root / subset / spk / chap
            d.mkdir(parents=True)
            lines = []
            for i, text in enumerate(sentences(utts, seed=100 * k + s)):
                uid = f"{spk}-{chap}-{i:04d}"
                sf.write(d / f"{uid}.flac", tone(text, seed=i), 16000, subtype="PCM_16")
                lines.append(f"{uid} {text.upper()}\n")
            (d / f"{spk}-{chap}.trans.txt").write_text("".join(lines))
    (root / "SPEAKERS.TXT").write_text("; ID  |SEX| SUBSET | MINUTES | NAME\n19 | F | train-clean-100 | 25.19 | Kara\n")
    (root / "CHAPTERS.TXT").write_text("; ID | READER | MINUTES | SUBSET | PROJ. | BOOK ID | CH. TITLE | PROJECT TITLE\n")
    (root / "LICENSE.TXT").write_text("CC BY 4.0\n")
    if lm:
        with gzip.open(base / "librispeech-lm-norm.txt.gz", "wt") as f:
            f.write("AB CD EF\nFED'S ABC\n")
    return base


def test_librispeech_prepare_train_decode(tmp_path):
    source = make_librispeech(tmp_path / "src")
    # one flac without a transcript line, one transcript line without its flac
    chap = source / "LibriSpeech" / "train-clean-100" / "19" / "198"
    sf.write(chap / "19-198-0099.flac", tone("ab"), 16000)
    with open(chap / "19-198.trans.txt", "a") as f:
        f.write("19-198-0077 AB CD\n")
    cfg = corpus_config(tmp_path, "librispeech", source, dev_split="dev_clean",
                        test_splits=["test_clean", "test_other"], nj=2,
                        subsets=list(SUBSETS))
    summary, hyps = pipeline(cfg, {"train": 10, "dev_clean": 3, "dev_other": 2, "test_clean": 3,
                                   "test_other": 2})
    assert sorted(r.kind for r in summary.rejects) == ["missing file", "no transcript"]
    mdir = Path(cfg.data.root) / "manifests"
    train = read_jsonl(mdir / "train.jsonl")
    assert train[0]["id"] == "19-198-0000" and train[0]["speaker"] == "19"
    assert train[0]["subset"] == "train-clean-100" and train[0]["text"] == train[0]["text"].lower()
    assert os.path.isabs(train[0]["audio_filepath"])  # the corpus is outside data.root
    assert (mdir / "train_text.txt").read_text().splitlines() == [e["text"] for e in train]
    assert (mdir / "lm_text.txt").read_text() == "ab cd ef\nfed's abc\n"
    assert "19-198-0077" in (mdir / "rejected.tsv").read_text()


def _archives(tmp_path: Path) -> dict[str, str]:
    """<subset>.tar.gz of a miniature tree, as published (members under LibriSpeech/)."""
    tree = make_librispeech(tmp_path / "tree", {"train-clean-100": (1, 3), "dev-clean": (1, 2)}, lm=False)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    md5 = {}
    for subset in ("train-clean-100", "dev-clean"):
        path = mirror / f"{subset}.tar.gz"
        with tarfile.open(path, "w:gz") as tf:
            tf.add(tree / "LibriSpeech" / subset, f"LibriSpeech/{subset}")
        md5[subset] = hashlib.md5(path.read_bytes()).hexdigest()
    return md5


def test_librispeech_download_checks_md5_and_extracts(tmp_path, monkeypatch):
    from data_prep.prepare import run_prepare
    from data_prep import librispeech
    md5 = _archives(tmp_path)
    assert librispeech.MD5["train-clean-100"] == "2a93770f6d5c6c964bc36631d331a522"  # published
    monkeypatch.setattr(librispeech, "MD5", {**librispeech.MD5, **md5})
    cfg = corpus_config(tmp_path, "librispeech", tmp_path / "downloads", download=True,
                        mirror=(tmp_path / "mirror").as_uri(), subsets=["train-clean-100", "dev-clean"],
                        dev_split="dev_clean", test_splits=["dev_clean"])
    summary = run_prepare(cfg, progress=False)
    assert summary.splits["train"][0] == 3 and summary.splits["dev_clean"][0] == 2
    assert (tmp_path / "downloads" / "train-clean-100.tar.gz").exists()
    assert (tmp_path / "downloads" / "LibriSpeech" / "dev-clean").is_dir()
    # a corrupt download is refused by its checksum, nothing extracted
    monkeypatch.setattr(librispeech, "MD5", {**librispeech.MD5, "test-clean": "0" * 32})
    (tmp_path / "mirror" / "test-clean.tar.gz").write_bytes(b"not the archive")
    cfg.data.subsets = ["test-clean"]
    with pytest.raises(ValueError, match="checksum mismatch"):
        run_prepare(cfg, progress=False)
    assert not (tmp_path / "downloads" / "LibriSpeech" / "test-clean").exists()


def test_librispeech_missing_subset_says_what_to_do(tmp_path):
    from data_prep.prepare import run_prepare
    source = make_librispeech(tmp_path / "src", {"dev-clean": (1, 2)}, lm=False)
    cfg = corpus_config(tmp_path, "librispeech", source, subsets=["train-clean-100"])
    with pytest.raises(FileNotFoundError, match="data.download=true"):
        run_prepare(cfg, progress=False)


def test_make_demo_librispeech_100_on_a_miniature_tree(tmp_path):
    """What a user runs on the real corpus, with tiny sizes via ARGS."""
    source = make_librispeech(tmp_path / "LibriSpeech-parent")
    args = " ".join([
        f"data.root={tmp_path}/data", f"train.exp_dir={tmp_path}/exp", "data.nj=1",
        "model.rnn_layers=1", "model.rnn_hidden=16", "model.conv_channels=4", "model.subsample=2",
        "train.max_steps=2", "train.epochs=1", "train.batch_frames=2000", "train.warmup_steps=1",
        "train.device=cpu", "train.amp=none", "train.num_workers=0", "train.threads=1",
        "train.log_every=1", "train.checkpoint_every=0", "train.compile=false", "decode.batch_size=8"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    r = subprocess.run(["make", "--no-print-directory", "demo", "RECIPE=librispeech_100",
                        f"DATA={source}", f"ARGS={args}"], cwd=REPO, capture_output=True,
                       text=True, timeout=600, env={**env, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "demo finished" in r.stdout
    mdir = tmp_path / "data" / "manifests"
    assert {p.name for p in mdir.glob("*.jsonl")} >= {"train.jsonl", "dev_clean.jsonl",
                                                     "test_clean.jsonl", "test_other.jsonl"}
    assert (tmp_path / "exp" / "report.md").exists()
    for split in ("test_clean", "test_other"):
        assert (tmp_path / "exp" / "decode" / split / "greedy" / "hyp.jsonl").exists()


def test_librispeech_archive_with_escaping_member_is_refused(tmp_path, monkeypatch):
    import io

    from asr.data.archive import UnsafeArchiveError
    from data_prep.prepare import run_prepare
    from data_prep import librispeech
    source = tmp_path / "dl"
    source.mkdir()
    for name in ("../../evil", "/tmp/evil_librispeech_abs"):
        archive = source / "dev-clean.tar.gz"
        with tarfile.open(archive, "w:gz") as tf:
            for member, data in (("LibriSpeech/dev-clean/1/2/1-2.trans.txt", b"1-2-0000 AB\n"),
                                 (name, b"evil")):
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        monkeypatch.setattr(librispeech, "MD5", {**librispeech.MD5,
                                                 "dev-clean": hashlib.md5(archive.read_bytes()).hexdigest()})
        cfg = corpus_config(tmp_path, "librispeech", source, subsets=["dev-clean"])
        with pytest.raises(UnsafeArchiveError):
            run_prepare(cfg, progress=False)
        assert not (source / "LibriSpeech").exists()  # checked whole before writing anything
        assert not (tmp_path / "evil").exists() and not Path("/tmp/evil_librispeech_abs").exists()
