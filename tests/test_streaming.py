"""Streaming recognition equals offline recognition of the whole signal, chunk size regardless."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.config import FeatureConfig, ModelConfig
from asr.data.audio import load_audio
from asr.data.features import FeatureExtractor
from asr.decoding.decoders import greedy_hyps
from asr.model import CTCModel, frame_seconds
from asr.streaming import StreamingRecognizer, _Features, stream_file, stream_pcm
from asr.text.vocab import CharVocab
from asr.transcribe.transcriber import clamp_words

SR = 16000
FEATS = FeatureConfig(n_mels=20)
VOCAB = CharVocab(["<blank>", " ", "a", "b", "c", "d", "e"])


def signal(n: int, seed: int = 0) -> np.ndarray:
    """Noise with a varying envelope and a tone: features that change from frame to frame."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * t)
    return (0.3 * env * rng.standard_normal(n) + 0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)


def make_model(seed: int = 0, **cfg) -> CTCModel:
    """A small random-weight unidirectional model with non-trivial CMVN and BatchNorm stats,
    and output weights large enough (and centred) that the argmax moves between labels."""
    torch.manual_seed(seed)
    cfg = ModelConfig(**{"bidirectional": False, "rnn_layers": 2, "rnn_hidden": 16,
                         "conv_channels": 4, **cfg})
    model = CTCModel(cfg, FEATS.n_mels, len(VOCAB))
    model.set_cmvn(torch.full((FEATS.n_mels,), -4.0), torch.full((FEATS.n_mels,), 3.0))
    for norm in model.frontend.norms:
        norm.running_mean.uniform_(-0.2, 0.2)
        norm.running_var.uniform_(0.5, 1.5)
    model.eval()
    seen = []  # centre each label's logit on a calibration signal: the argmax then follows
    hook = model.output.register_forward_hook(lambda m, i, o: seen.append(i[0]))  # the input
    offline(model, signal(SR, seed=99))
    hook.remove()
    with torch.no_grad():
        model.output.weight.mul_(8.0)
        model.output.bias.copy_(-seen[0].flatten(0, 1).mean(0) @ model.output.weight.T)
    return model


@torch.no_grad()
def offline(model: CTCModel, wav: np.ndarray):
    feats = FeatureExtractor(FEATS)(torch.from_numpy(wav))
    lp, lengths = model(feats[None], torch.tensor([len(feats)]))
    hyp = greedy_hyps(lp, lengths, VOCAB, frame_s=frame_seconds(FEATS.hop_ms, model.cfg.subsample))[0]
    # as the offline Transcriber's result: no word time past the last sample
    return lp[0], {**hyp, "words": clamp_words(hyp["words"], round(len(wav) / SR, 3))}


def pieces(wav: np.ndarray, size: int):
    return [wav[i:i + size] for i in range(0, len(wav), size)]


@pytest.mark.parametrize("kind", ["fbank", "spectrogram"])
@pytest.mark.parametrize("size", [37, 160, 1000, 5333])
def test_features_equal_offline(kind, size):
    cfg = FeatureConfig(kind=kind, n_mels=20)
    wav = signal(12345)
    want = FeatureExtractor(cfg)(torch.from_numpy(wav))
    feats = _Features(FeatureExtractor(cfg))
    parts = pieces(wav, size)
    got = [feats(torch.from_numpy(p), False) for p in parts] + [feats(torch.zeros(0), True)]
    got = torch.cat([g for g in got if g is not None])
    assert got.shape == want.shape == (1 + len(wav) // 160, want.shape[1])
    assert (got - want).abs().max() < 1e-4


MODELS = [
    {"rnn_type": "lstm", "subsample": 4, "lookahead": 0},
    {"rnn_type": "lstm", "subsample": 2, "lookahead": 3, "projection": 8},
    {"rnn_type": "gru", "subsample": 4, "lookahead": 2, "norm_type": "batch"},
    {"rnn_type": "gru", "subsample": 2, "lookahead": 0, "norm_type": "none"},
]


@pytest.mark.parametrize("cfg", MODELS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_streamed_log_probs_and_text_equal_offline(cfg):
    model = make_model(**cfg)
    wav = signal(SR + 4321)  # 1.27 s: not a whole number of hops or chunks
    want_lp, want = offline(model, wav)
    assert want["text"].strip(), "the test model should emit labels"
    for chunk_ms in (7, 37, 120, 500):  # 7 ms: less than a hop; 37 ms: not a multiple of it
        rec = StreamingRecognizer(model, VOCAB, FEATS, chunk_ms=chunk_ms)
        parts = pieces(wav, rec.chunk_samples)
        lps = [rec.step(p) for p in parts] + [rec.step(np.zeros(0, np.float32), final=True)]
        got_lp = torch.cat(lps)
        assert got_lp.shape == want_lp.shape
        assert (got_lp - want_lp).abs().max() <= 1e-4, chunk_ms
        rec.reset()
        partial = [rec.accept(p) for p in parts]
        assert all(not p["final"] for p in partial)
        final = rec.finish()
        assert final["final"] and final["text"] == want["text"] and final["words"] == want["words"]
        assert want["text"].startswith(partial[-1]["text"].rstrip())


def test_a_long_pause_ends_a_word_as_in_transcribe():
    """Transcriber decodes the segments between pauses one by one, so a pause of min_pause_s
    ends a word; the stream's partial and final texts do the same (and not with 0)."""
    model = make_model(rnn_type="lstm", subsample=4, lookahead=0)
    c, blank = VOCAB.index["c"], VOCAB.blank
    path = [blank, c, c] + [blank] * 12 + [c, blank]  # 12 frames of 40 ms: a 0.48 s pause
    lp = torch.nn.functional.one_hot(torch.tensor(path), len(VOCAB)).float().mul(9).log_softmax(-1)
    for pause_s, text in ((0.4, "c c"), (0.0, "cc")):
        rec = StreamingRecognizer(model, VOCAB, FEATS, chunk_ms=120, min_pause_s=pause_s)
        rec.step = lambda samples, final=False: lp[:0] if final else lp  # the network's output
        audio = np.zeros(len(path) * 640, np.float32)  # the 40 ms frames' samples: one step
        assert rec.accept(audio)["text"] == text  # partial
        final = rec.finish()
        assert final["text"] == text
        assert final["words"][-1]["start"] == pytest.approx(0.04 * 15 if pause_s else 0.04)


def test_final_word_times_end_within_the_audio():
    """Output frames may reach past the last sample: the final words end by the duration, as
    in asr transcribe (here the network's frames are 0.64 s for 0.12 s of audio)."""
    model = make_model(rnn_type="lstm", subsample=4, lookahead=0)
    c, blank = VOCAB.index["c"], VOCAB.blank
    path = [blank, c, c] + [blank] * 12 + [c]
    lp = torch.nn.functional.one_hot(torch.tensor(path), len(VOCAB)).float().mul(9).log_softmax(-1)
    rec = StreamingRecognizer(model, VOCAB, FEATS, chunk_ms=120)
    rec.step = lambda samples, final=False: lp[:0] if final else lp
    rec.accept(np.zeros(rec.chunk_samples, np.float32))
    final = rec.finish()
    assert final["text"] == "c c" and final["duration"] == 0.12
    assert all(w["start"] <= w["end"] <= 0.12 for w in final["words"])


def test_uneven_pieces_and_reuse():
    """Pieces of any size (the network runs once a chunk is pending), and the recognizer is
    ready for a second utterance after finish."""
    model = make_model(rnn_type="lstm", subsample=4, lookahead=1)
    wav = signal(20000, seed=3)
    _, want = offline(model, wav)
    rec = StreamingRecognizer(model, VOCAB, FEATS, chunk_ms=50)
    rng = np.random.default_rng(1)
    for _ in range(2):
        i = 0
        while i < len(wav):
            n = int(rng.integers(1, 1500))
            rec.accept(torch.from_numpy(wav[i:i + n]))
            i += n
        assert rec.finish()["words"] == want["words"]


def test_refuses_bidirectional_and_handles_empty():
    torch.manual_seed(0)
    bi = CTCModel(ModelConfig(bidirectional=True, rnn_layers=1, rnn_hidden=8, conv_channels=2),
                  FEATS.n_mels, len(VOCAB))
    with pytest.raises(ValueError, match="unidirectional"):
        StreamingRecognizer(bi, VOCAB, FEATS)
    rec = StreamingRecognizer(make_model(), VOCAB, FEATS)
    assert rec.finish() == {"text": "", "words": [], "duration": 0.0, "final": True}
    rec.accept(np.zeros(100, np.float32))  # shorter than the FFT's reflect padding
    assert rec.finish()["text"] == ""


def test_latency():
    rec = StreamingRecognizer(make_model(subsample=4, lookahead=2), VOCAB, FEATS, chunk_ms=200)
    assert rec.latency_ms == pytest.approx(200 + 2 * 40 + 16)  # + lookahead + half an FFT
    rec = StreamingRecognizer(make_model(subsample=2, lookahead=0), VOCAB, FEATS, chunk_ms=100)
    assert rec.latency_ms == pytest.approx(100 + 2 * 10 + 16)  # + the conv's 2 frames


def test_stream_file_and_pcm(tmp_path):
    model = make_model(rnn_type="gru", subsample=4, lookahead=2)
    wav = signal(24000, seed=5)
    path = tmp_path / "a.wav"
    sf.write(path, wav, SR, subtype="PCM_16")
    pcm = load_audio(path).numpy()  # the 16-bit signal
    _, want = offline(model, pcm)
    rec = StreamingRecognizer(model, VOCAB, FEATS, chunk_ms=200)
    partials = []
    final, stats = stream_file(rec, path, 100, on_partial=partials.append)
    assert final["words"] == want["words"]
    assert stats["chunks"] == len(partials) == 15 and stats["rtf"] > 0
    assert stats["latency_ms"] == rec.latency_ms == pytest.approx(100 + 80 + 16)

    slow = tmp_path / "b.wav"  # another rate: loaded whole and resampled, as offline
    sf.write(slow, wav[::2], SR // 2, subtype="PCM_16")
    assert stream_file(rec, slow)[0]["words"] == offline(model, load_audio(slow).numpy())[1]["words"]

    raw = io.BytesIO((pcm * 32768).round().astype("<i2").tobytes())
    results = list(stream_pcm(rec, raw, SR, 120))
    assert [r["final"] for r in results] == [False] * 13 + [True]
    assert results[-1]["words"] == want["words"]
    with pytest.raises(ValueError, match="Hz"):
        next(stream_pcm(rec, io.BytesIO(b""), 8000))


# ---------------------------------------------------------------- the CLI: asr transcribe --stream

@pytest.fixture(scope="module")
def uni_run(tone_run, tmp_path_factory):
    """A unidirectional + lookahead model trained for a few updates on the tone corpus: its
    text is rough, but streaming and offline must give the same one."""
    from conftest import small_config
    from asr.config import apply
    from asr.train import Trainer
    exp = tmp_path_factory.mktemp("uni") / "exp"
    cfg = small_config(tone_run, exp, max_steps=60, epochs=6, checkpoint_every=0, log_every=1000)
    apply(cfg, {"model": {"bidirectional": False, "lookahead": 2, "rnn_layers": 1}})
    Trainer(cfg).train()
    return exp


def test_cli_stream_file_and_stdin_equal_offline(uni_run, tone_run, monkeypatch, capsys):
    from asr.cli import main
    wav = next((tone_run / "audio" / "test").glob("*.wav"))
    assert main(["transcribe", str(uni_run), str(wav), "--decoder", "greedy", "--no-progress"]) == 0
    offline_line = capsys.readouterr().out.strip()  # "<file>\t<text>"
    assert main(["transcribe", str(uni_run), str(wav), "--stream", "--chunk-ms", "120"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == offline_line
    offline_text = offline_line.split("\t", 1)[1]
    assert len(offline_text) >= 3, "the test model emits too little to compare (test set-up)"
    assert '"latency_ms"' in err and '"rtf"' in err  # the stream's figures, on stderr

    pcm = (load_audio(wav).numpy() * 32768).round().clip(-32768, 32767).astype("<i2").tobytes()
    monkeypatch.setattr("sys.stdin", type("Stdin", (), {"buffer": io.BytesIO(pcm)})())
    assert main(["transcribe", str(uni_run), "-", "--stream", "--chunk-ms", "80"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == offline_text
    assert err.count("... ") >= 2  # partial results while the audio arrives


def test_cli_stream_refuses_the_flags_it_cannot_honour(uni_run, tone_run, tmp_path, capsys):
    """--stream decodes greedily with the PyTorch network and prints text: a flag for anything
    else is refused by name in one line (exit 2), before any work; --decoder greedy is fine."""
    from asr.cli import main
    wav = str(next((tone_run / "audio" / "test").glob("*.wav")))
    for flags, named in ((["--decoder", "beam"], "--decoder"), (["--lm", str(tmp_path)], "--lm"),
                         (["--engine", "onnx"], "--engine"), (["--format", "srt"], "--format"),
                         (["--out", str(tmp_path / "o")], "--out"), (["--vad"], "--vad"),
                         (["--chunk-s", "8"], "--chunk-s"), (["--batch-size", "4"], "--batch-size"),
                         (["--lm-weight", "1"], "--lm-weight"), (["--beam-size", "4"], "--beam-size"),
                         (["--hotword", "ab"], "--hotword"), (["--max-chars", "20"], "--max-chars")):
        assert main(["transcribe", str(uni_run), wav, "--stream", *flags]) == 2, flags
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith(f"error: {named}:"), (flags, err)
    assert not (tmp_path / "o").exists()
    assert main(["transcribe", str(uni_run), wav, "--stream", "--decoder", "greedy", "--device", "cpu",
                 "--format", "txt", "--engine", "torch", "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith(wav + "\t")
    # and the other way round: --stream's own flags without --stream
    assert main(["transcribe", str(uni_run), wav, "--chunk-ms", "100"]) == 2
    assert capsys.readouterr().err.strip() == "error: --chunk-ms: only used with --stream"


def test_cli_stream_runs_on_the_device_asked_for(uni_run, tone_run, monkeypatch, capsys):
    """--stream --device cuda without CUDA is an error, not a silent run on the CPU; the API's
    stream() runs on the model's device."""
    import asr
    from asr.cli import main
    wav = str(next((tone_run / "audio" / "test").glob("*.wav")))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["transcribe", str(uni_run), wav, "--stream", "--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    monkeypatch.undo()
    model = asr.load(uni_run, device="cpu")
    assert model.stream().device == torch.device("cpu")


def test_cli_stream_refuses_a_bidirectional_model(tone_run, capsys):
    from asr.cli import main
    wav = next((tone_run / "audio" / "test").glob("*.wav"))
    assert main(["transcribe", str(tone_run / "exp"), str(wav), "--stream"]) != 0
    assert "needs a unidirectional model" in capsys.readouterr().err


def test_bench_ship_streams_a_unidirectional_bundle(uni_run, tone_run, tmp_path, capsys):
    """make bench-ship's script on the tone test set: three engines, and the streaming figures
    of a unidirectional bundle whose final texts equal offline decoding."""
    import json
    from asr.bench import ship
    from asr.bundle import verify_bundle
    from asr.source import model_source
    model_source(tone_run / "exp").save(tmp_path / "bi.bundle")
    model_source(uni_run).save(tmp_path / "uni.bundle")
    assert ship.main([str(tmp_path / "bi.bundle"), str(tone_run / "manifests" / "test.jsonl"),
                      "--threads", "1", "--repeats", "2", "--streaming-bundle", str(tmp_path / "uni.bundle")]) == 0
    out = capsys.readouterr().out
    assert "| onnx-int8 |" in out and "final text = offline on 8/8" in out
    figures = json.loads((tmp_path / "bi.bundle.bench_ship.json").read_text())
    verify_bundle(tmp_path / "bi.bundle")  # the figures went beside the bundle, not into it
    assert [r["engine"] for r in figures["rows"]] == ["torch", "onnx", "onnx-int8"]
    assert figures["streaming"]["latency_ms"] == pytest.approx(200 + 2 * 20 + 2 * 10 + 16)  # + conv context


def test_streaming_runs_the_models_inference_forward(monkeypatch):
    """Streaming runs the stages of the model's own inference forward (asr.inference): a
    change made there once (here to every RNN layer's output) shows offline and streamed alike."""
    from asr.inference import RNNLayer
    model = make_model(**MODELS[2])  # GRU, BatchNorm, lookahead
    wav = signal(SR + 4321)
    before, _ = offline(model, wav)
    normalise = RNNLayer.normalise
    monkeypatch.setattr(RNNLayer, "normalise", lambda self, y: 3 * torch.tanh(normalise(self, y)))
    want, _ = offline(model, wav)
    assert (want - before).abs().max() > 1e-2
    rec = StreamingRecognizer(model, VOCAB, FEATS, chunk_ms=120)
    assert rec.net is model.inference()
    lps = [rec.step(p) for p in pieces(wav, rec.chunk_samples)]
    got = torch.cat(lps + [rec.step(np.zeros(0, np.float32), final=True)])
    assert got.shape == want.shape and (got - want).abs().max() <= 1e-4
