"""Where a model comes from and what it decodes with: bundles written into used folders, run
folders used from other directories, checkpoint fallbacks, registered decoders and the one-line
errors of ordinary mistakes (the issue "Wrong results that nobody is told about")."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from asr.bundle import BundleError, verify_bundle, write_index
from asr.source import model_source
from asr.checkpoint import CheckpointError, find_checkpoint, save_checkpoint
from asr.cli import main
from asr.config import Config, load_config, save_config, to_dict
from asr.model import CTCModel
from asr.text.vocab import CharVocab
from conftest import SR, tone_speech

REPO = Path(__file__).resolve().parents[1]


def tiny_run(run: Path, saved: dict | None = None, names=("best", "last")) -> Path:
    """A run folder with a small random model's checkpoints and a config.yaml of `saved`
    (written as given, e.g. with relative paths as older versions saved them)."""
    cfg = Config()
    cfg.model.rnn_hidden, cfg.model.rnn_layers, cfg.model.conv_channels = 8, 1, 2
    vocab = CharVocab()
    torch.manual_seed(0)
    for name in names:
        model = CTCModel(cfg.model, cfg.features.n_mels, len(vocab))
        save_checkpoint({"model": model.state_dict(), "config": to_dict(cfg), "vocab": vocab.tokens,
                         "n_feats": cfg.features.n_mels}, run / "checkpoints" / f"{name}.pt")
    (run / "config.yaml").write_text(yaml.safe_dump(saved or {}))
    return run


def fake_lm(folder: Path) -> Path:
    """lm.bin + lexicon.txt stand-ins: which decoder a model picks depends on their presence."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lm.bin").write_bytes(b"kenlm")
    (folder / "lexicon.txt").write_text("ab\ta b |\n")
    return folder


# ---------------------------------------------------------------- 1: re-bundling a used folder

def test_rebundling_leaves_no_stale_file(tone_run, tmp_path):
    """A bundle written over an exported one keeps none of its files: no model.onnx of the
    previous network, no lm.bin that would make the new bundle decode with an LM."""
    out = tmp_path / "tone.bundle"
    no_lm = tmp_path / "no_lm"
    no_lm.mkdir()
    model_source(tone_run / "exp").save(out, lm_dir=no_lm)
    stale = ("model.onnx", "model.int8.onnx", "results.md", "lm.bin", "lexicon.txt")
    for name in stale:
        (out / name).write_bytes(b"from the previous bundle")
    write_index(out)  # as `asr export` leaves it
    index = model_source(tone_run / "exp", which="last").save(out, lm_dir=no_lm)
    on_disk = {p.name for p in out.iterdir()} - {"bundle.json"}
    assert on_disk == set(index["files"])
    assert not on_disk & (set(stale) - {"results.md"})
    assert ("results.md" in on_disk) == (tone_run / "exp" / "report.md").is_file()
    verify_bundle(out)
    assert model_source(out).best_decoder() == "greedy"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp folders left


def test_bundle_refuses_to_replace_a_folder_that_is_not_a_bundle(tone_run, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(BundleError, match=r"mine: not a bundle \(no bundle.json\) and not empty"):
        model_source(tone_run / "exp").save(out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    model_source(tone_run / "exp").save(empty, lm_dir=tmp_path / "no_lm")
    verify_bundle(empty)


def test_a_bundle_folder_has_the_permissions_of_any_new_folder(tone_run, tmp_path):
    out = tmp_path / "tone.bundle"
    model_source(tone_run / "exp").save(out, lm_dir=tmp_path / "no_lm")
    (tmp_path / "plain").mkdir()
    assert out.stat().st_mode == (tmp_path / "plain").stat().st_mode  # not mkdtemp's 0700


def test_failed_rebundle_leaves_the_old_bundle_whole(tone_run, tmp_path, monkeypatch):
    out = tmp_path / "tone.bundle"
    before = model_source(tone_run / "exp").save(out, lm_dir=tmp_path / "no_lm")

    def crash(*args):
        raise RuntimeError("disk full")
    monkeypatch.setattr("asr.bundle.write_index", crash)  # the last step of writing
    with pytest.raises(RuntimeError, match="disk full"):
        model_source(tone_run / "exp", which="last").save(out, lm_dir=tmp_path / "no_lm")
    assert verify_bundle(out)["files"] == before["files"]
    assert [p.name for p in tmp_path.iterdir()] == ["tone.bundle"]


# ---------------------------------------------------------------- 2: run folders used from elsewhere

def test_saved_config_paths_are_absolute(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    cfg = load_config(None, ["data.root=data/x", "lm.dir=lms/x", "lm.text=text.txt",
                             "decode.lexicon_path=lex.txt", "decode.hotwords_file=hot.txt",
                             "augment.noise_dirs=noise", "train.exp_dir=exp/r1",
                             "data.train_shards=https://host/shard-{000..003}.tar"])
    save_config(cfg, project / "exp" / "r1" / "config.yaml")
    monkeypatch.chdir(tmp_path)
    saved = load_config(project / "exp" / "r1" / "config.yaml")
    assert saved.data.root == str(project / "data" / "x") and saved.lm.dir == str(project / "lms" / "x")
    assert saved.lm.text == str(project / "text.txt") and saved.decode.lexicon_path == str(project / "lex.txt")
    assert saved.decode.hotwords_file == str(project / "hot.txt")
    assert saved.augment.noise_dirs == [str(project / "noise")] and saved.train.exp_dir == str(project / "exp" / "r1")
    assert saved.data.train_shards == "https://host/shard-{000..003}.tar"  # a URL stays as it is
    assert saved.decode.lm_path == "" and saved.data.source == ""  # unset stays unset


def test_old_run_with_relative_paths_keeps_its_lm_from_another_directory(tmp_path, monkeypatch):
    """A run saved with paths relative to the directory it was trained in (older versions)
    finds its data and LM wherever it is used from: they are relative to the run folder less
    its recorded train.exp_dir."""
    project = tmp_path / "project"
    fake_lm(project / "data" / "x" / "lm")
    run = tiny_run(project / "exp" / "x" / "run1",
                   {"data": {"root": "data/x"}, "train": {"exp_dir": "exp/x/run1"}})
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    source = model_source(run)
    assert source.best_decoder() == "beam_lm"
    assert source.decode.lm_path == str(project / "data" / "x" / "lm" / "lm.bin")
    assert source.decode.lexicon_path == str(project / "data" / "x" / "lm" / "lexicon.txt")


def test_moved_run_relative_paths_are_a_guess_with_a_warning(tmp_path, monkeypatch, caplog):
    run = tiny_run(tmp_path / "moved", {"data": {"root": "data/x"}, "train": {"exp_dir": "exp/x/run1"}})
    fake_lm(tmp_path / "data" / "x" / "lm")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING):
        source = model_source(run)
    assert source.decode.lm_path == str(tmp_path / "data" / "x" / "lm" / "lm.bin")
    assert "config.yaml" in caplog.text and "data.root=data/x" in caplog.text
    assert "current directory" in caplog.text


def test_missing_lm_falls_back_to_greedy_with_a_warning(tmp_path, caplog):
    root = tmp_path / "data"
    run = tiny_run(tmp_path / "run", {"data": {"root": str(root)}, "decode": {"decoder": "beam_lm"}})
    source = model_source(run)
    with caplog.at_level(logging.WARNING):
        assert source.best_decoder() == "greedy"
    assert str(root / "lm" / "lm.bin") in caplog.text and "decoding greedily" in caplog.text
    caplog.clear()
    plain = model_source(tiny_run(tmp_path / "plain", {"data": {"root": str(root)}}))
    with caplog.at_level(logging.WARNING):
        assert plain.best_decoder() == "greedy"
    assert caplog.text == ""  # a run that names no LM is greedy without a word


# ---------------------------------------------------------------- 9: make bundle CONFIG=...

def make_dry_run(*args: str) -> str:
    proc = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(REPO), "bundle",
                           f"PY={sys.executable}", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_make_bundle_takes_the_run_from_the_config():
    assert ".venv/bin/asr bundle exp/builtin/real exp/builtin/real-bundle" in \
        make_dry_run("CONFIG=recipes/builtin/real.yaml")
    assert ".venv/bin/asr bundle exp/builtin/run1 exp/builtin/bundle" in make_dry_run()
    assert ".venv/bin/asr bundle exp/a exp/b" in make_dry_run("RUN=exp/a", "BUNDLE=exp/b")


# ---------------------------------------------------------------- 11: registered decoders

def test_registered_decoder_runs_in_transcriber_tuning_and_store_decoding(tone_run, tmp_path):
    from asr.data.store import open_store
    from asr.decoding import tuning
    from asr.decoding.decoders import DECODERS, decode_store, greedy_hyps, register_decoder, unregister_decoder
    from asr.config import DecodeConfig
    from asr.scoring.score import wer
    from asr.transcribe.transcriber import Transcriber
    calls = []

    @register_decoder("test-shout")
    def shout(log_probs, lengths, vocab, cfg, frame_s):
        calls.append(cfg.decoder)
        hyps = greedy_hyps(log_probs, lengths, vocab, cfg, frame_s)
        for h in hyps:
            h["text"] = h["text"].upper()
            for w in h["words"]:
                w["word"] = w["word"].upper()
        return hyps
    try:
        wav = tmp_path / "a.wav"
        sf.write(wav, tone_speech("abc fed ab", np.random.default_rng(0)), SR, subtype="PCM_16")
        assert Transcriber(tone_run / "exp", device="cpu", decoder="test-shout").transcribe(wav)["text"] == "ABC FED AB"
        model, vocab, _, _ = model_source(tone_run / "exp").network()
        store = open_store(tone_run, "test", Config().features)
        hyps = decode_store(model, vocab, store, torch.device("cpu"), decoder="test-shout")
        greedy = decode_store(model, vocab, store, torch.device("cpu"))
        assert [h["text"] for h in hyps] == [h["text"].upper() for h in greedy]
        outputs = tuning.split_outputs(model, store, torch.device("cpu"))
        refs = [e["text"].upper() for e in store.entries]
        assert tuning.evaluate(outputs, refs, vocab, DecodeConfig(decoder="test-shout")) == \
            wer(refs, [h["text"] for h in hyps])
        assert set(calls) == {"test-shout"}
    finally:
        unregister_decoder("test-shout")
    assert "test-shout" not in DECODERS
    with pytest.raises(ValueError, match="decode.decoder must be one of"):
        DecodeConfig(decoder="test-shout")


def test_register_decoder_refuses_the_store_form_and_builtin_names():
    from asr.decoding.decoders import DECODERS, register_decoder
    with pytest.raises(ValueError, match=r"fn\(log_probs, lengths, vocab, cfg, frame_s\)"):
        @register_decoder("test-old")
        def old(model, vocab, store, device):
            return []
    with pytest.raises(ValueError, match="built-in decoder 'greedy'"):
        register_decoder("greedy")(lambda log_probs, lengths, vocab, cfg, frame_s: [])
    assert "test-old" not in DECODERS and DECODERS["greedy"].name == "greedy"


# ---------------------------------------------------------------- 12: best.pt falling back to last.pt

def test_find_checkpoint_falls_back_to_last_only_with_a_warning(tmp_path, caplog):
    run = tiny_run(tmp_path / "run", names=("last",))
    with caplog.at_level(logging.WARNING):
        assert find_checkpoint(run) == run / "checkpoints" / "last.pt"
    assert "no checkpoints/best.pt" in caplog.text and "last.pt" in caplog.text
    with pytest.raises(CheckpointError, match=r"no checkpoints/best.pt"):
        find_checkpoint(run, "best", fallback=False)
    with pytest.raises(CheckpointError, match=r"no checkpoints/avg-last5.pt \(there are: last\)"):
        find_checkpoint(run, "avg-last5")  # another checkpoint than asked for is never silent
    assert find_checkpoint(run, "last", fallback=False) == run / "checkpoints" / "last.pt"


def test_bundle_of_a_run_without_best_warns_or_refuses_when_best_is_asked_for(tmp_path, capsys, caplog):
    run = tiny_run(tmp_path / "run", names=("last",))
    with caplog.at_level(logging.WARNING):
        assert main(["bundle", str(run), str(tmp_path / "b1")]) == 0
    assert "no checkpoints/best.pt" in caplog.text
    assert json.loads((tmp_path / "b1" / "card.json").read_text())["checkpoint"] == "last.pt"
    capsys.readouterr()
    assert main(["bundle", str(run), str(tmp_path / "b2"), "--checkpoint", "best"]) == 2
    assert "error: " in capsys.readouterr().err and not (tmp_path / "b2").exists()


# ---------------------------------------------------------------- 16: ordinary mistakes, one line each

def test_arguments_swapped_name_the_audio_file(tmp_path, capsys):
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(1600, np.float32), SR)
    run = tiny_run(tmp_path / "run")
    assert main(["transcribe", str(wav), str(run)]) == 2
    err = capsys.readouterr().err
    assert f"error: {wav}: not a model (bundle folder, run folder or .pt checkpoint); " \
           "usage: asr transcribe MODEL FILE..." in err and "Traceback" not in err


def test_folder_that_is_neither_bundle_nor_run_is_named(tmp_path, capsys):
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "model.pt").write_bytes(b"x")
    with pytest.raises(BundleError, match=r"downloads: neither a bundle \(no bundle.json\) nor a run "
                                          r"folder \(no checkpoints/\)"):
        model_source(folder)
    assert main(["transcribe", str(folder), str(tmp_path / "a.wav")]) == 2
    assert "neither a bundle" in capsys.readouterr().err


def test_decode_and_tune_lm_without_config_are_clear_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for command in ("decode", "tune-lm"):
        assert main([command]) == 2
        err = capsys.readouterr().err
        assert f"error: asr {command} needs --config" in err and "Traceback" not in err


def test_checkpoint_and_bundle_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "checkpoints").mkdir()
    assert main(["average", str(tmp_path)]) == 2  # CheckpointError: nothing to average
    assert capsys.readouterr().err.startswith("error: no checkpoints to average")
    assert main(["export", str(tmp_path), "--format", "onnx"]) == 2  # BundleError: no bundle.json
    assert "bundle.json" in capsys.readouterr().err


def test_export_format_has_help(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert "model.onnx" in capsys.readouterr().out
