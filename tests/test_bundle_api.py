"""Shipping a model: `asr bundle`, the Python API (`asr.load`), tsv/ctm outputs.

The tiny tone model (conftest.tone_run) knows five words; its LM is built here into a folder of
its own, so the run's data folder keeps no LM and other tests see the run as it was.
"""

import json
import re
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

import asr
from asr.bundle import BundleError
from asr.source import model_source
from asr.cli import main
from asr.data.audio import AudioError
from asr.decoding.lm import build_lm
from asr.scoring.score import wer
from conftest import SR, tone_speech
from test_lm import need_kenlm


@pytest.fixture(scope="module")
def bundle(tone_run, tmp_path_factory):
    """A bundle of the tone run with a 3-gram LM, copied to a folder far from the run."""
    need_kenlm()
    lm = tmp_path_factory.mktemp("tone_lm")
    build_lm(tone_run / "manifests" / "train_text.txt", lm, order=3)
    made = tmp_path_factory.mktemp("made") / "tone.bundle"
    model_source(tone_run / "exp").save(made, lm_dir=lm)
    shipped = tmp_path_factory.mktemp("elsewhere") / "tone.bundle"
    shutil.copytree(made, shipped)
    shutil.rmtree(made)
    return shipped


def tone_file(path, text, rate=SR, seed=0):
    sf.write(path, tone_speech(text, np.random.default_rng(seed), rate), rate, subtype="PCM_16")
    return path


def test_bundle_holds_weights_lm_settings_and_card(bundle, tone_run):
    index = json.loads((bundle / "bundle.json").read_text())
    assert {"model.pt", "lm.bin", "lexicon.txt", "decode.yaml", "card.json", "README.md"} <= set(index["files"])
    ckpt = torch.load(bundle / "model.pt", weights_only=True)
    assert "optimizer" not in ckpt and "rng" not in ckpt and "model" in ckpt
    assert (bundle / "model.pt").stat().st_size < (tone_run / "exp" / "checkpoints" / "best.pt").stat().st_size
    card = json.loads((bundle / "card.json").read_text())
    assert card["training"]["split"] == "train" and card["parameters"] > 0
    source = model_source(bundle)
    assert source.best_decoder() == "beam_lm" and source.decode.lm_path == str(bundle / "lm.bin")


def test_bundle_transcribes_from_another_directory(bundle, tmp_path, monkeypatch, capsys):
    audio = tone_file(tmp_path / "a.wav", "abc fed ab")
    monkeypatch.chdir(tmp_path)
    assert main(["transcribe", str(bundle), "a.wav", "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == "a.wav\tabc fed ab"
    model = asr.load(bundle, device="cpu")
    assert model.decoder == "beam_lm" and model.transcribe(audio).text == "abc fed ab"


def test_damaged_bundle_is_refused_by_name(bundle, tmp_path, capsys):
    broken = tmp_path / "broken.bundle"
    shutil.copytree(bundle, broken)
    good = (broken / "lexicon.txt").read_bytes()
    data = bytearray(good)
    data[5] ^= 0x20
    (broken / "lexicon.txt").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"lexicon.txt: damaged"):
        asr.load(broken)
    (broken / "lexicon.txt").write_bytes(good)
    (broken / "lm.bin").unlink()
    assert main(["transcribe", str(broken), str(tmp_path / "x.wav")]) == 2
    assert re.search(r"lm.bin: missing from the bundle", capsys.readouterr().err)


def test_api_on_files_and_arrays_at_any_rate(bundle, tmp_path):
    model = asr.load(bundle, device="cpu", decoder="greedy")
    texts = ["ab cd", "fed", "abc ef ab", "cd cd", "ef"]
    files = [tone_file(tmp_path / f"{i}.wav", t, seed=i) for i, t in enumerate(texts)]
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    out = model.transcribe([*files[:2], tmp_path / "bad.wav", *files[2:]])
    assert [t.text for t in out] == texts[:2] + [""] + texts[2:]
    assert "bad.wav" in out[2].error and out[0].error is None
    w = out[2 + 1].words[0]
    assert w.word == "abc" and 0 <= w.start < w.end and 0 < w.conf <= 1
    for rate in (8000, 44100):  # an array gives what the same samples in a file give
        samples = tone_speech("abc fed ab", np.random.default_rng(3), rate)
        sf.write(tmp_path / f"r{rate}.wav", samples, rate, subtype="FLOAT")
        from_file = model.transcribe(tmp_path / f"r{rate}.wav")
        assert model.transcribe(samples, sample_rate=rate).text == from_file.text
        assert from_file.text.split()[0] == "abc" and from_file.text.split()[-1] == "ab"
        stereo = np.stack([samples, samples], axis=1)
        assert model.transcribe(torch.from_numpy(stereo), sample_rate=rate).text == from_file.text
    with pytest.raises(ValueError, match="sample_rate"):
        model.transcribe(samples)
    with pytest.raises(AudioError, match="bad.wav"):
        model.transcribe(tmp_path / "bad.wav")


def test_batched_network_matches_one_at_a_time(tone_run, tmp_path):
    from asr.transcribe.transcriber import Transcriber
    files = [tone_file(tmp_path / f"{i}.wav", t, seed=i) for i, t in enumerate(["ab", "abc fed", "cd ef ab"])]
    one = Transcriber(tone_run / "exp", device="cpu", decoder="greedy", batch_size=1)
    many = Transcriber(tone_run / "exp", device="cpu", decoder="greedy", batch_size=3)
    a = [r for _, r in one.transcribe_many(files)]
    b = [r for _, r in many.transcribe_many(files)]
    assert [r["text"] for r in a] == [r["text"] for r in b] == ["ab", "abc fed", "cd ef ab"]
    for x, y in zip(a, b):
        for wx, wy in zip(x["words"], y["words"]):
            assert wx["start"] == wy["start"] and abs(wx["conf"] - wy["conf"]) < 0.01  # conf rounded to 1e-4


def test_length_sorted_batches_keep_each_files_words(tone_run, tmp_path):
    """transcribe_many sorts windows of several files by length across batches: a long file's
    windows are decoded out of order, among short files', and each result is still what
    transcribe() gives for that file alone, words in time order."""
    from asr.transcribe.transcriber import Chunking, Transcriber
    texts = ["ab", "abc fed cd ef ab fed abc cd ef ab cd fed abc", "cd ef", "fed ab cd"]
    files = [tone_file(tmp_path / f"{i}.wav", t, seed=i) for i, t in enumerate(texts)]
    t = Transcriber(tone_run / "exp", device="cpu", decoder="greedy", batch_size=2,
                    chunking=Chunking(chunk_s=1.2, overlap_s=0.4))
    alone = [t.transcribe(f) for f in files]
    assert len(list(t.windows(files[1]))) >= 3
    together = [r for _, r in t.transcribe_many(files)]
    assert [r["text"] for r in together] == [r["text"] for r in alone]
    for x, y in zip(together, alone):
        assert [w["start"] for w in x["words"]] == [w["start"] for w in y["words"]] == \
            sorted(w["start"] for w in y["words"])


def test_tsv_and_ctm_outputs(bundle, tmp_path):
    tone_file(tmp_path / "a.wav", "abc fed ab")
    assert main(["transcribe", str(bundle), str(tmp_path / "a.wav"), "--format", "tsv,ctm",
                 "--out", str(tmp_path / "o"), "--no-progress", "--max-chars", "7"]) == 0
    tsv = (tmp_path / "o" / "a.tsv").read_text().splitlines()
    assert tsv[0] == "start\tend\ttext" and [r.split("\t")[2] for r in tsv[1:]] == ["abc fed", "ab"]
    ctm = [ln.split() for ln in (tmp_path / "o" / "a.ctm").read_text().splitlines()]
    assert [c[4] for c in ctm] == ["abc", "fed", "ab"] and all(c[:2] == ["a", "1"] for c in ctm)
    assert float(ctm[1][2]) > float(ctm[0][2])


def test_model_source_of_a_run_and_a_checkpoint(tone_run):
    run = model_source(tone_run / "exp")
    ckpt = model_source(tone_run / "exp" / "checkpoints" / "best.pt")
    assert run.kind == "run" and ckpt.kind == "checkpoint" and run.folder == ckpt.folder
    with pytest.raises(BundleError, match="no such bundle"):
        model_source(tone_run / "nowhere")


def test_readme_api_example_runs(bundle, tmp_path, monkeypatch, capsys):
    """The README's Python API example, run on the tone bundle and a tone file."""
    from pathlib import Path
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    code = re.search(r"<!-- api-example -->\n```python\n(.*?)```", readme, re.S).group(1)
    tone_file(tmp_path / "meeting.wav", "abc fed ab")
    tone_file(tmp_path / "call.flac", "cd ef")
    monkeypatch.chdir(tmp_path)
    assert 'asr.load("exp/builtin/run1")' in code  # what make demo makes, not a bundle it does not
    code = code.replace("exp/builtin/run1", str(bundle))
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "abc fed ab" in out and "cd ef" in out


def encode(path, samples, rate, video: bool = False, audio: bool = True):
    """An AAC track (in .m4a / .mp4), with a few frames of video when asked, made with PyAV."""
    av = pytest.importorskip("av")
    out = av.open(str(path), "w")
    if video:
        v = out.add_stream("mpeg4", rate=10)
        v.width, v.height, v.pix_fmt = 32, 32, "yuv420p"
    if audio:
        a = out.add_stream("aac", rate=rate)
        a.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1).astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = rate
        for p in [*a.encode(frame), *a.encode(None)]:
            out.mux(p)
    if video:
        for i in range(5):
            img = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 40, np.uint8), format="rgb24")
            for p in v.encode(img):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
    out.close()
    return path


def test_m4a_and_mp4_video_are_transcribed(bundle, tmp_path):
    model = asr.load(bundle, device="cpu", decoder="greedy")
    samples = tone_speech("abc fed ab", np.random.default_rng(4), 16000)
    expect = model.transcribe(samples, sample_rate=16000).text
    m4a = encode(tmp_path / "talk.m4a", samples, 16000)
    mp4 = encode(tmp_path / "clip.mp4", samples, 16000, video=True)
    for path in (m4a, mp4):
        t = model.transcribe(path)
        assert t.text == expect and abs(t.duration - len(samples) / 16000) < 0.2, path  # AAC pads frames
    silent = encode(tmp_path / "silent.mp4", samples, 16000, video=True, audio=False)
    with pytest.raises(AudioError, match="silent.mp4: has no audio track"):
        model.transcribe(silent)


def test_exported_engines_give_the_same_text_on_the_test_set(bundle, tone_run, tmp_path, capsys):
    """asr export, then asr transcribe --engine onnx / onnx-int8 / torchscript on the tone
    test set: the fp32 engines give PyTorch's greedy text on every file; int8 stays close."""
    shipped = tmp_path / "tone.bundle"
    shutil.copytree(bundle, shipped)
    assert main(["export", str(shipped), "--format", "onnx", "--int8"]) == 0
    assert main(["export", str(shipped), "--format", "torchscript"]) == 0
    capsys.readouterr()
    test_audio = str(tone_run / "audio" / "test")
    texts = {}
    for engine in ("torch", "onnx", "torchscript", "onnx-int8"):
        assert main(["transcribe", str(shipped), test_audio, "--decoder", "greedy",
                     "--engine", engine, "--no-progress"]) == 0
        texts[engine] = dict(line.split("\t", 1) for line in capsys.readouterr().out.splitlines())
    assert len(texts["torch"]) == 8
    assert texts["onnx"] == texts["torch"] and texts["torchscript"] == texts["torch"]
    refs = {json.loads(x)["id"]: json.loads(x)["text"] for x in (tone_run / "manifests" / "test.jsonl").open()}
    ref_list = [refs[re.sub(r".*/|\.wav$", "", f)] for f in sorted(texts["torch"])]
    wers = {e: wer(ref_list, [t[f] for f in sorted(t)]) for e, t in texts.items()}
    assert wers["onnx-int8"] <= wers["torch"] + 15  # 8 short utterances: one word is 5-10 points
