import pytest
import yaml

from asr.config import load_config, save_config


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"model": {"rnn_type": "gru", "rnn_layers": 2},
                                    "train": {"lr": 0.001}}))
    cfg = load_config(path, ["train.lr=3e-3", "model.layer_norm=false", "data.test_splits=a,b",
                             "train.epochs=7"])
    assert cfg.model.rnn_type == "gru" and cfg.model.rnn_layers == 2
    assert cfg.train.lr == pytest.approx(3e-3) and isinstance(cfg.train.lr, float)
    assert cfg.model.layer_norm is False
    assert cfg.data.test_splits == ["a", "b"]
    assert cfg.train.epochs == 7 and isinstance(cfg.train.epochs, int)
    cfg.data.root, cfg.train.exp_dir = str(tmp_path / "data"), str(tmp_path / "run")  # saved as they are
    save_config(cfg, tmp_path / "run" / "config.yaml")
    again = load_config(tmp_path / "run" / "config.yaml")
    assert again == cfg


def test_mapping_settings_from_yaml_and_the_command_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"data": {"real": {"queen": 2, "hedgewars": 1.5}}}))  # an old recipe: data.real
    assert load_config(path).builtin.real == {"queen": 2.0, "hedgewars": 1.5}
    cfg = load_config(path, ["builtin.real=queen:3,tuxpaint:1", "builtin.voices=pico:1"])
    assert cfg.builtin.real == {"queen": 3.0, "tuxpaint": 1.0} and cfg.builtin.voices == {"pico": 1.0}
    assert load_config(path, ["builtin.real="]).builtin.real == {}
    cfg.data.root, cfg.train.exp_dir = str(tmp_path / "data"), str(tmp_path / "run")
    save_config(cfg, tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml") == cfg


@pytest.mark.parametrize("override,match", [
    ("train.nope=1", "unknown key 'nope'"),
    ("nosection.x=1", "unknown section"),
    ("train.epochs=many", "expected int"),
    ("lr=1", "section.key=value"),
    ("builtin.real=queen", "expected key:value"),
    ("builtin.real=queen:lots", "builtin.real.queen: expected float"),
    ("builtin.lm_sources=encyclopedia", "must be one of gcide, manpages"),
])
def test_bad_overrides_are_named(override, match):
    with pytest.raises(ValueError, match=match):
        load_config(None, [override])


def test_yaml_is_parsed_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("train: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(yaml.YAMLError):
        load_config(path)


def test_variant_recipe_builds_on_its_base(tmp_path):
    (tmp_path / "config.yaml").write_text("model: {rnn_layers: 4}\ntrain: {lr: 0.002, epochs: 3}\n")
    (tmp_path / "aug.yaml").write_text("base: config.yaml\ntrain: {epochs: 5}\n"
                                       "augment: {specaugment: true, speed_factors: [0.9, 1.1]}\n")
    cfg = load_config(tmp_path / "aug.yaml", ["train.lr=1e-3"])
    assert cfg.model.rnn_layers == 4 and cfg.train.epochs == 5 and cfg.train.lr == 1e-3
    assert cfg.augment.specaugment and cfg.augment.speed_factors == [0.9, 1.1]
    assert cfg.augment.wave_active
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ValueError, match="loops"):
        load_config(tmp_path / "loop.yaml")


def test_shipped_recipes_load():
    from pathlib import Path
    paths = sorted(Path(__file__).parent.parent.glob("recipes/*/*.yaml"))
    for path in [p for p in paths if p.name != "benchmark.yaml"]:  # that one lists systems
        load_config(path)


@pytest.mark.parametrize("override, match", [
    ("model.rnn_layers=2.5", "model.rnn_layers: expected int, got 2.5"),
    ("train.max_steps=-5", "train.max_steps must be >= 0"),
    ("train.epochs=0", "train.epochs must be positive"),
    ("train.lr=-1e-3", "train.lr must be positive"),
    ("model.dropout=1.5", r"model.dropout must be in \[0, 1\]"),
    ("train.max_minutes=nan", "train.max_minutes must be >= 0"),
    ("data.nj=0", "data.nj must be positive"),
])
def test_counts_and_sizes_are_checked_not_truncated(override, match):
    with pytest.raises(ValueError, match=match):
        load_config(None, [override])


def test_integral_floats_and_signed_scores_are_accepted(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  rnn_layers: 4.0\n")
    cfg = load_config(path, ["decode.word_score=-2", "augment.snr_min=-5"])
    assert cfg.model.rnn_layers == 4 and type(cfg.model.rnn_layers) is int
    assert cfg.decode.word_score == -2.0 and cfg.augment.snr_min == -5.0


def test_a_removed_key_is_dropped_with_a_note_so_old_runs_still_load(tmp_path, caplog):
    """decode.batch_size was read by nothing and is gone; every run saved before holds it."""
    import dataclasses
    import logging

    from asr.config import Config, DecodeConfig
    from asr.source import saved_run_config
    assert "batch_size" not in {f.name for f in dataclasses.fields(DecodeConfig)}
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(
        {"data": {"root": str(tmp_path / "data")}, "train": {"exp_dir": str(run)},
         "decode": {"decoder": "greedy", "checkpoint": "best", "batch_size": 16, "beam_size": 8}}))
    with caplog.at_level(logging.INFO):
        cfg = load_config(run / "config.yaml", ["decode.batch_size=8"])
        saved = saved_run_config(run)
    assert cfg.decode.beam_size == 8 and saved.decode.beam_size == 8
    assert cfg.decode == saved.decode == DecodeConfig(beam_size=8)
    assert caplog.text.count("decode.batch_size is no longer a setting") == 3
    with pytest.raises(ValueError, match="unknown key 'batch_sise'"):  # other unknown keys still fail
        load_config(None, ["decode.batch_sise=8"])
    assert Config().decode == DecodeConfig()


def test_recipes_set_norm_type_and_the_old_alias_still_means_the_same(tmp_path):
    from pathlib import Path
    repo = Path(__file__).parent.parent
    recipes = sorted((repo / "recipes").glob("**/*.yaml"))
    assert recipes
    for path in recipes:
        values = yaml.safe_load(path.read_text()) or {}
        assert "layer_norm" not in (values.get("model") or {}), path
        assert "batch_size" not in (values.get("decode") or {}), path
    for alias, norm in ((True, "layer"), (False, "none")):
        (tmp_path / "old.yaml").write_text(yaml.safe_dump({"model": {"layer_norm": alias}}))
        assert load_config(tmp_path / "old.yaml").model.norm_type == norm
    assert load_config(repo / "recipes" / "builtin" / "config.yaml").model.norm_type == "layer"
