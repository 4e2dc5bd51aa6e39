"""One decoder shape: every registry entry decodes a batch of network outputs
(Decoder.decode(log_probs, lengths, vocab, cfg, frame_s)), and a decoder added through the
public hook (register_decoder) runs wherever decoders run: `asr transcribe`, `asr decode` and
`asr tune-lm`, each handing it its DecodeConfig."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from asr.cli import main
from asr.decoding.decoders import (DECODERS, Decoder, decode_store, greedy_hyps, register_decoder,
                                   unregister_decoder)
from conftest import SR, tone_speech


@pytest.fixture
def run_copy(tone_run, tmp_path):
    """The tone run's folder (checkpoints, config.yaml) copied, without what other tests wrote
    into it (decodes, tuned settings), so that tune-lm here writes only here."""
    run = tmp_path / "run"
    shutil.copytree(tone_run / "exp", run, ignore=shutil.ignore_patterns(
        "decode_*", "decode.yaml", "tune_lm.json", "benchmark*", "tensorboard"))
    return run


@pytest.fixture
def hook():
    """Decoder "test-hook", registered for the test: greedy, but empty below lm_weight 1 (so
    tune-lm has a best setting to find) and upper case with the hotword "shout" (so the
    settings of transcribe and decode are seen to reach it). Yields the decoder names it saw."""
    seen: list[str] = []

    @register_decoder("test-hook")
    def decode(log_probs, lengths, vocab, cfg, frame_s):
        seen.append(cfg.decoder)
        if cfg.lm_weight < 1:
            return [{"text": "", "words": []} for _ in range(len(lengths))]
        hyps = greedy_hyps(log_probs, lengths, vocab, cfg, frame_s)
        if "shout" in cfg.hotwords:
            for h in hyps:
                h["text"] = h["text"].upper()
                for w in h["words"]:
                    w["word"] = w["word"].upper()
        return hyps
    try:
        yield seen
    finally:
        unregister_decoder("test-hook")
    assert "test-hook" not in DECODERS


def test_a_registered_decoder_runs_in_transcribe_decode_and_tune_lm(tone_run, run_copy, hook, tmp_path, capsys):
    run = run_copy
    assert isinstance(DECODERS["test-hook"], Decoder)  # the same shape as the built-in ones
    # asr transcribe (Transcriber: the windows of a recording)
    wav = tmp_path / "a.wav"
    sf.write(wav, tone_speech("abc fed ab", np.random.default_rng(0)), SR, subtype="PCM_16")
    capsys.readouterr()
    assert main(["transcribe", str(run), str(wav), "--decoder", "test-hook", "--hotword", "shout",
                 "--no-progress"]) == 0
    assert capsys.readouterr().out == f"{wav}\tABC FED AB\n"
    assert set(hook) == {"test-hook"}
    # asr decode (decode_store: the batches of a feature store)
    config = str(run / "config.yaml")
    on_copy = [f"train.exp_dir={run}", "data.nj=1"]
    assert main(["decode", "--config", config, *on_copy, "decode.decoder=test-hook",
                 "decode.hotwords=shout"]) == 0
    hyps = [json.loads(x) for x in (run / "decode" / "test" / "test-hook" / "hyp.jsonl").open()]
    refs = [json.loads(x)["text"] for x in (tone_run / "manifests" / "test.jsonl").open()]
    assert [h["text"] for h in hyps] == [r.upper() for r in refs]
    # asr tune-lm (precomputed outputs, one trial per setting)
    hook.clear()
    assert main(["tune-lm", "--config", config, *on_copy, "--decoder", "test-hook",
                 "--lm-weights", "0.5,2", "--word-scores", "0"]) == 0
    assert hook and set(hook) == {"test-hook"}
    tuned = (run / "decode.yaml").read_text()
    assert yaml.safe_load(tuned)["decode"] == {"lm_weight": 2.0, "word_score": 0.0}
    assert "test-hook WER 0.0%" in tuned
    assert main(["tune-lm", "--config", config, *on_copy, "--decoder", "nope"]) == 2
    assert "unknown decoder 'nope'" in capsys.readouterr().err


def test_every_entry_decodes_a_batch_and_the_store_loop_is_decode_store(tone_run, hook):
    from asr.source import model_source
    from asr.config import Config
    from asr.data.store import open_store
    model, vocab, _, _ = model_source(tone_run / "exp").network()
    store = open_store(tone_run, "test", Config().features)
    lp, n = torch.log_softmax(torch.randn(2, 30, len(vocab)), -1), torch.tensor([30, 20])
    for name, decoder in DECODERS.items():
        if name == "beam_lm":
            continue  # needs an LM file; test_beam decodes it
        assert decoder(lp, n, vocab) == decoder.decode(lp, n, vocab)  # one shape, called or not
        assert len(decoder.decode(lp, n, vocab)) == 2
    hyps = decode_store(model, vocab, store, torch.device("cpu"), decoder="test-hook")
    assert len(hyps) == len(store) and all(isinstance(h["text"], str) for h in hyps)
