"""Fine-tuning (train.init_from, train.freeze, train.init_norm) from the tiny tone model
(conftest.tone_run): what is copied, the output rows of a new vocabulary, frozen layers,
resuming, transcribing, and the errors."""

import json

import pytest
import torch

from asr.checkpoint import load_checkpoint
from asr.config import Config, apply, load_config
from asr.finetune import InitReport, copy_weights, freeze
from asr.model import CTCModel
from asr.text.vocab import BLANK, CharVocab
from asr.train import Trainer

from conftest import tone_model_config


def finetune_config(root, exp, **train) -> Config:
    """The tone model's recipe, a run folder of its own, init_from the tone run."""
    cfg = tone_model_config(root)
    apply(cfg, {"train": {"exp_dir": str(exp), "init_from": str(root / "exp"), **train}})
    return cfg


def initial(root) -> dict:
    return load_checkpoint(root / "exp" / "checkpoints" / "best.pt")


def test_matching_weights_are_loaded_and_the_architecture_taken(tone_run, tmp_path, caplog):
    """A recipe that leaves the model section at its defaults gets the initial model's
    architecture and every weight of it; step, optimiser and schedule start afresh."""
    cfg = Config()
    apply(cfg, {"data": {"root": str(tone_run), "test_splits": ["test"]},
                "train": {"exp_dir": str(tmp_path / "ft"), "init_from": str(tone_run / "exp"),
                          "init_norm": "model", "threads": 2, "warmup_steps": 10}})
    caplog.set_level("INFO")
    trainer = Trainer(cfg)
    saved = initial(tone_run)
    state = trainer.model.state_dict()
    assert state.keys() == saved["model"].keys()
    for name, tensor in saved["model"].items():
        assert torch.equal(state[name], tensor), name
    assert trainer.init_report.adopted["rnn_hidden"] == 64 and cfg.model.rnn_layers == 1
    assert cfg.model.dropout == 0.1  # a training setting: the recipe's
    assert not trainer.init_report.new and not trainer.init_report.skipped
    assert trainer.step == 0 and not trainer.optimizer.state
    assert trainer.scheduler.get_last_lr()[0] == pytest.approx(cfg.train.lr / 10)  # warm-up step 1
    written = load_config(tmp_path / "ft" / "config.yaml")
    assert written.model.rnn_hidden == 64 and written.train.init_from == str(tone_run / "exp")
    assert "tensors loaded" in (tmp_path / "ft" / "train.log").read_text()
    assert trainer.validate()["cer"] < 5  # it starts where the initial model is


def test_a_new_vocabulary_keeps_the_rows_of_shared_tokens(tone_run):
    """Other units: the output rows (and bias entries) of the tokens both vocabularies have
    are copied by token string, the blank to the blank; the others stay new; with
    init_norm=data the run's own CMVN statistics stay."""
    saved = initial(tone_run)
    vocab = CharVocab([BLANK, "b", "ä", " ", "a"])
    model = CTCModel(tone_model_config(tone_run).model, saved["n_feats"], len(vocab))
    model.set_cmvn(torch.full((saved["n_feats"],), 3.0), torch.full((saved["n_feats"],), 2.0))
    fresh = model.output.weight.detach().clone(), model.output.bias.detach().clone()
    report = InitReport()
    copy_weights(model, vocab, saved, report, keep_cmvn=False)
    old = {t: i for i, t in enumerate(saved["vocab"])}
    for row, token in enumerate(vocab.tokens):
        if token in old or token == BLANK:
            assert torch.equal(model.output.weight[row], saved["model"]["output.weight"][old[token]])
            assert model.output.bias[row] == saved["model"]["output.bias"][old[token]]
        else:  # "ä": not in the tone model's characters
            assert torch.equal(model.output.weight[row], fresh[0][row])
            assert model.output.bias[row] == fresh[1][row]
    assert report.rows == ["output.weight: 4/5 rows", "output.bias: 4/5 rows"]
    assert torch.equal(model.rnn.rnns[0].weight_hh_l0, saved["model"]["rnn.rnns.0.weight_hh_l0"])
    assert (model.cmvn_mean == 3.0).all() and (model.cmvn_std == 2.0).all()
    assert any(s.startswith("cmvn_mean (train.init_norm=data") for s in report.skipped)


def test_frozen_layers_stay_bit_identical_and_the_run_transcribes(tone_run, tmp_path):
    """train.freeze: the front-end (its BatchNorm statistics too) and the first RNN layer are
    the initial model's after updates, the rest trained; the optimiser holds only the rest.
    The fine-tuned run transcribes as any run does (asr.load and the CLI)."""
    import asr
    from asr.cli.main import main
    exp = tmp_path / "frozen"
    cfg = finetune_config(tone_run, exp, freeze=["frontend", "rnn.rnns.0"], max_steps=4, lr=1e-3)
    trainer = Trainer(cfg)
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    assert trainable == sum(p.numel() for g in trainer.optimizer.param_groups for p in g["params"])
    assert trainer.train()["step"] == 4
    before = initial(tone_run)["model"]
    after = load_checkpoint(exp / "checkpoints" / "last.pt")["model"]
    for name, tensor in after.items():
        frozen = name.startswith(("frontend.", "rnn.rnns.0."))
        if frozen or name.startswith("cmvn"):
            assert torch.equal(tensor, before[name]), name
        elif name.startswith(("output.", "rnn.norms.")):
            assert not torch.equal(tensor, before[name]), name
    assert "frontend.norms.0.running_mean" in after  # a BatchNorm statistic, checked above
    test = [json.loads(x) for x in (tone_run / "manifests" / "test.jsonl").open()][:3]
    model = asr.load(exp, device="cpu", decoder="greedy")
    texts = [model.transcribe(x["audio_filepath"]).text for x in test]
    assert sum(t == x["text"] for t, x in zip(texts, test)) >= 2, (texts, test)
    assert main(["transcribe", str(exp), test[0]["audio_filepath"], "--no-progress"]) == 0


def test_resume_goes_on_from_the_fine_tuning_run_not_the_initial_model(tone_run, tmp_path, caplog):
    exp = tmp_path / "ft"
    first = Trainer(finetune_config(tone_run, exp, max_steps=3))
    assert first.train()["step"] == 3
    last = load_checkpoint(exp / "checkpoints" / "last.pt")
    caplog.set_level("INFO")
    resumed = Trainer(finetune_config(tone_run, exp, max_steps=5), resume=True)
    assert resumed.step == 3 and resumed.init_report.resumed and not resumed.init_report.loaded
    state = resumed.model.state_dict()
    for name, tensor in last["model"].items():
        assert torch.equal(state[name], tensor), name
    assert not torch.equal(state["output.weight"], initial(tone_run)["model"]["output.weight"])
    assert "not applied, the run resumes" in caplog.text
    assert resumed.train()["step"] == 5


def test_features_that_differ_are_refused_naming_both_values(tone_run, tmp_path):
    cfg = finetune_config(tone_run, tmp_path / "ft")
    apply(cfg, {"features": {"n_mels": 40}, "train": {
        "init_from": str(tone_run / "exp" / "checkpoints" / "best.pt")}})
    with pytest.raises(ValueError, match="features.n_mels: 80 in the initial model, 40 in this run"):
        Trainer(cfg)


def test_an_architecture_where_nothing_fits_is_refused(tone_run, tmp_path):
    cfg = finetune_config(tone_run, tmp_path / "ft")
    apply(cfg, {"model": {"conv_channels": 4, "rnn_hidden": 32}})
    with pytest.raises(ValueError, match="model.rnn_hidden: 64 in the initial model, 32 in this run"):
        Trainer(cfg)


def test_freeze_prefixes_from_the_command_line_and_a_wrong_one(tone_run):
    cfg = load_config(overrides=["train.freeze=[frontend,rnn.rnns.0]", "train.init_norm=model"])
    assert cfg.train.freeze == ["frontend", "rnn.rnns.0"] and cfg.train.init_norm == "model"
    with pytest.raises(ValueError, match="train.init_norm must be one of data, model"):
        load_config(overrides=["train.init_norm=both"])
    model = CTCModel(cfg.model, 80, 30)
    with pytest.raises(ValueError, match="'conv' names no parameter.*frontend.convs.0"):
        freeze(model, ["conv"])
    names = freeze(model, ["rnn.rnns.1"])
    assert names and all(n.startswith("rnn.rnns.1.") for n in names)
