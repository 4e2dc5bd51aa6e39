"""`asr benchmark`: a tiny random model over a tiny feature store, decoded and scored."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from asr.decoding.decoders import DECODERS, get_decoder, register_decoder, unregister_decoder  # noqa: E402
from asr.scoring.benchmark import load_benchmark  # noqa: E402
from asr.checkpoint import save_checkpoint  # noqa: E402
from asr.cli import main  # noqa: E402
from asr.config import Config, load_config, to_dict  # noqa: E402
from asr.model import CTCModel  # noqa: E402
from asr.text.vocab import CharVocab  # noqa: E402


def _store(path, texts, dim=8):
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    entries, feats, offset = [], [], 0
    for i, text in enumerate(texts):
        frames = 40 + 10 * i
        feats.append(rng.standard_normal((frames, dim)).astype(np.float16))
        entries.append({"id": f"spk{i % 2}-u{i}", "shard": 0, "offset": offset, "frames": frames,
                        "duration": frames / 100, "text": text, "speaker": f"spk{i % 2}"})
        offset += frames
    np.save(path / "shard-00000.npy", np.concatenate(feats))
    (path / "index.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    (path / "meta.json").write_text(json.dumps({"features": {"kind": "fbank", "n_mels": dim, "hop_ms": 10}}))
    return entries


@pytest.fixture
def tiny_run(tmp_path):
    texts = ["ab cd", "ef", "abc fed", "cd ab ef"]
    root, exp = tmp_path / "data", tmp_path / "exp"
    entries = _store(root / "features" / "test", texts)
    (root / "manifests").mkdir(parents=True)
    (root / "manifests" / "test.jsonl").write_text(
        "".join(json.dumps({"id": e["id"], "text": e["text"], "speaker": e["speaker"]}) + "\n" for e in entries))
    cfg = Config()
    cfg.model.rnn_hidden, cfg.model.rnn_layers, cfg.model.conv_channels = 8, 1, 2
    vocab = CharVocab()
    torch.manual_seed(0)
    for name in ("best", "last"):
        model = CTCModel(cfg.model, 8, len(vocab))
        save_checkpoint({"model": model.state_dict(), "config": to_dict(cfg), "vocab": vocab.tokens,
                         "n_feats": 8}, exp / "checkpoints" / f"{name}.pt")
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    (recipe / "config.yaml").write_text(
        f"data: {{root: {root}, test_splits: [test]}}\ntrain: {{exp_dir: {exp}, device: cpu, threads: 1}}\n")
    return recipe, exp


def test_benchmark_every_system_on_every_split(tiny_run, capsys):
    recipe, exp = tiny_run
    (recipe / "benchmark.yaml").write_text(
        "benchmark:\n  - {decoder: greedy, checkpoint: best}\n  - {decoder: greedy, checkpoint: last, "
        "batch_frames: 100}\nn_boot: 100\n")
    assert main(["benchmark", "--config", str(recipe / "config.yaml")]) == 0
    out = capsys.readouterr().out
    head = out.splitlines()[0]
    assert "checkpoint" in head and "WER % ± 95% CI" in head and "RTF" in head
    rows = json.loads((exp / "benchmark.json").read_text())
    assert [(r["split"], r["checkpoint"]) for r in rows] == [("test", "best"), ("test", "last")]
    for r in rows:
        assert r["utterances"] == 4 and r["words"] == 8 and r["rtf"] > 0 and r["audio_s"] == pytest.approx(2.2)
        assert r["wer_lo"] <= r["wer"] <= r["wer_hi"] and "wer_ci" in r
    assert "| test | greedy | best | 4 |" in (exp / "benchmark.md").read_text()
    hyp = exp / "benchmark" / "greedy-last" / "test" / "hyp.jsonl"
    assert len(hyp.read_text().splitlines()) == 4
    assert (hyp.parent / "report.md").exists()


def test_benchmark_defaults_and_errors(tiny_run, capsys, tmp_path):
    recipe, exp = tiny_run
    cfg = load_config(recipe / "config.yaml")
    assert load_benchmark(None, cfg)["benchmark"] == [{"decoder": "greedy", "checkpoint": "best"}]
    # without benchmark.yaml: the recipe's own decoder and checkpoint
    assert main(["benchmark", "--config", str(recipe / "config.yaml"), "--n-boot", "50"]) == 0
    assert len(json.loads((exp / "benchmark.json").read_text())) == 1
    capsys.readouterr()
    bad = tmp_path / "b.yaml"
    bad.write_text("benchmark:\n  - {decoder: beam9000}\n")
    assert main(["benchmark", "--config", str(recipe / "config.yaml"), "--benchmark", str(bad)]) == 2
    assert "unknown decoder 'beam9000' (available: " in capsys.readouterr().err
    bad.write_text("benchmark:\n  - {decoder: greedy, beam: 3}\n")
    assert main(["benchmark", "--config", str(recipe / "config.yaml"), "--benchmark", str(bad)]) == 2
    assert "does not take options ['beam']" in capsys.readouterr().err
    bad.write_text("benchmark: []\n")
    assert main(["benchmark", "--config", str(recipe / "config.yaml"), "--benchmark", str(bad)]) == 2
    assert main(["benchmark", "--config", str(recipe / "config.yaml"), "--benchmark", str(tmp_path / "no.yaml")]) == 2


def test_decoder_registry(tiny_run, capsys):
    """A decoder registered through the hook (the batch form) is benchmarked like a built-in."""
    @register_decoder("test-echo")
    def echo(log_probs, lengths, vocab, cfg, frame_s):
        return [{"text": "ab", "words": [{"word": "ab", "start": 0.0, "end": frame_s, "conf": 1.0}]}
                for _ in lengths]
    try:
        assert get_decoder("test-echo").fn is echo and get_decoder("greedy")
        with pytest.raises(ValueError, match="test-echo"):
            get_decoder("nope")
        recipe, exp = tiny_run
        (recipe / "benchmark.yaml").write_text("benchmark:\n  - {decoder: test-echo, beam_size: 4}\nn_boot: 10\n")
        assert main(["benchmark", "--config", str(recipe / "config.yaml")]) == 0
        hyps = (exp / "benchmark" / "test-echo-best" / "test" / "hyp.jsonl").read_text().splitlines()
        assert [json.loads(h)["text"] for h in hyps] == ["ab"] * 4
    finally:
        unregister_decoder("test-echo")
    assert "test-echo" not in DECODERS


def test_run_benchmark_returns_its_rows_and_prints_nothing(tiny_run, capsys):
    """The library returns the rows and writes the files; `asr benchmark` prints the table."""
    from asr.scoring.benchmark import report_paths, run_benchmark
    from asr.scoring.tables import results_table
    recipe, exp = tiny_run
    cfg = load_config(recipe / "config.yaml")
    spec = {"benchmark": [{"decoder": "greedy", "checkpoint": "best"}], "n_boot": 10}
    rows = run_benchmark(cfg, spec, reports=False)
    assert capsys.readouterr() == ("", "")
    md, js = report_paths(exp)
    assert json.loads(js.read_text()) == json.loads(json.dumps(rows, default=str))
    assert results_table(rows) in md.read_text()
    assert main(["benchmark", "--config", str(recipe / "config.yaml"), "--n-boot", "10"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == results_table(rows).splitlines()[0]  # the table's header
    assert out.splitlines()[-1] == f"written: {md}, {js}"
