"""asr.export: the packing-free inference path equals CTCModel, and the ONNX / TorchScript /
int8 files compute the same outputs, for other batch sizes and lengths than exported with,
and carry their metadata."""

from __future__ import annotations

import json

import pytest
import torch

from asr import export
from asr.config import ModelConfig
from asr.decoding.decoders import forward_batch
from asr.inference import ConvBlock
from asr.model import CTCModel, output_frames

N_FEATS, VOCAB = 20, 11

CONFIGS = {
    "lstm-bi": dict(),
    "gru-bi-batchnorm": dict(rnn_type="gru", norm_type="batch"),
    "lstm-projection": dict(projection=8),
    "uni-lookahead": dict(bidirectional=False, lookahead=3),
    "subsample2-nonorm": dict(subsample=2, norm_type="none"),
}


def small_model(seed: int = 0, **kw) -> CTCModel:
    """A tiny CTCModel with random weights, CMVN and BatchNorm statistics (so none of them is
    an identity that would hide a mistake), in eval mode."""
    torch.manual_seed(seed)
    cfg = ModelConfig(**{"conv_channels": 4, "rnn_layers": 2, "rnn_hidden": 16, **kw})
    model = CTCModel(cfg, N_FEATS, VOCAB)
    model.set_cmvn(torch.randn(N_FEATS), torch.rand(N_FEATS) + 0.5)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
    return model.eval()


def batch(lengths: list[int], seed: int = 1):
    """Padded (B, max T, F) features + lengths; the pads hold large values, not zeros, so
    anything that leaks from them shows."""
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(len(lengths), max(lengths), N_FEATS, generator=g)
    for i, n in enumerate(lengths):
        feats[i, n:] = 50.0
    return feats, torch.tensor(lengths)


META = {"toolkit": "asr-ctc test", "vocabulary": json.dumps(["<blank>"] + list("abcdefghij")),
        "blank": "0", "subsample": "4", "features": json.dumps({"n_mels": N_FEATS})}


@pytest.fixture(autouse=True)
def _threads():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.mark.parametrize("name", CONFIGS)
def test_inference_model_equals_packed(name):
    model = small_model(**CONFIGS[name])
    net = export.InferenceModel(model)
    feats, lengths = batch([45, 30, 7, 44])
    with torch.no_grad():
        ref, ref_len = model(feats, lengths)
        out, out_len = net(feats, lengths)
        assert torch.equal(out_len, ref_len)
        assert (out - ref).abs().max() <= 1e-4  # every frame, pads included
        # No leak from the pads (50.0 here) anywhere: each row as if alone, in both models.
        for i, n in enumerate(lengths.tolist()):
            k = int(out_len[i])
            for m, batched in ((net, out), (model, ref)):
                alone, _ = m(feats[i:i + 1, :n], lengths[i:i + 1])
                assert (alone[0] - batched[i, :k]).abs().max() <= 1e-4


def test_inference_model_shares_weights():
    model = small_model()
    net = export.InferenceModel(model)
    assert net.layers[0].backward_rnn.rnn.weight_hh_l0 is model.rnn.rnns[0].weight_hh_l0_reverse
    assert net.cmvn_mean.data_ptr() == model.cmvn_mean.data_ptr()
    net.train()
    assert not net.training  # dropout / batch statistics would break the equality


def test_output_lengths_match_output_frames():
    n = torch.arange(0, 40)
    for subsample in (2, 4):
        assert export.output_lengths(n, subsample).tolist() == [output_frames(int(i), subsample) for i in n]


@pytest.mark.parametrize("name", ["lstm-bi", "gru-bi-batchnorm", "lstm-projection", "uni-lookahead"])
def test_onnx_parity_other_shapes(tmp_path, name):
    model = small_model(**CONFIGS[name])
    path = export.export_onnx(model, tmp_path / "model.onnx", META)
    onnx_model = export.OnnxAcousticModel(path, threads=1)
    for lengths in ([61, 50, 9, 33, 60], [13]):  # the export example was 2 x 37 frames
        feats, lens = batch(lengths, seed=len(lengths))
        with torch.no_grad():
            ref, ref_len = model(feats, lens)
        out, out_len = onnx_model(feats, lens)
        assert out.shape == ref.shape and torch.equal(out_len, ref_len)
        assert (out - ref).abs().max() <= 1e-4
    assert onnx_model.metadata == META
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no temp files left


def test_onnx_model_in_decoder_batching(tmp_path):
    """OnnxAcousticModel has CTCModel's call interface: the decoders' forward_batch runs it."""
    model = small_model()
    onnx_model = export.OnnxAcousticModel(export.export_onnx(model, tmp_path / "m.onnx", META))
    feats = [torch.randn(n, N_FEATS) for n in (23, 40, 8)]
    ref, ref_len = forward_batch(model, feats, torch.device("cpu"))
    out, out_len = forward_batch(onnx_model.eval(), feats, torch.device("cpu"))
    assert torch.equal(out_len, ref_len) and (out - ref).abs().max() <= 1e-4


@pytest.mark.parametrize("name", ["lstm-bi", "lstm-projection", "uni-lookahead"])
def test_torchscript_parity_and_metadata(tmp_path, name):
    model = small_model(**CONFIGS[name])
    meta = {**META, "extra": {"nested": [1, 2]}}
    export.export_torchscript(model, tmp_path / "model.ts", meta)
    module, loaded_meta = export.load_torchscript(tmp_path / "model.ts")
    assert loaded_meta == meta
    for lengths in ([52, 17, 40], [9]):
        feats, lens = batch(lengths, seed=len(lengths))
        with torch.no_grad():
            ref, ref_len = model(feats, lens)
            out, out_len = module(feats, lens)
        assert torch.equal(out_len, ref_len) and (out - ref).abs().max() <= 1e-4


def test_int8_smaller_close_and_keeps_metadata(tmp_path):
    model = small_model(rnn_hidden=64)  # weights large enough to dominate the file
    fp32 = export.export_onnx(model, tmp_path / "model.onnx", META)
    int8 = export.quantize_int8(fp32, tmp_path / "model.int8.onnx")
    assert int8.stat().st_size < 0.5 * fp32.stat().st_size
    feats, lens = batch([70, 55, 31])
    ref, ref_len = export.OnnxAcousticModel(fp32, threads=1)(feats, lens)
    q = export.OnnxAcousticModel(int8, threads=1)
    out, out_len = q(feats, lens)
    assert torch.equal(out_len, ref_len)
    valid = torch.arange(out.shape[1])[None, :] < out_len[:, None]
    agree = (out.argmax(-1) == ref.argmax(-1))[valid].float().mean()
    assert agree >= 0.9 and (out - ref).abs().max() < 0.5
    assert q.metadata == {**META, "quantization": "int8-dynamic"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.int8.onnx", "model.onnx"]


def test_non_string_metadata_stored_as_json(tmp_path):
    model = small_model(subsample=2).train()
    path = export.export_onnx(model, tmp_path / "m.onnx", {"blank": 0, "vocabulary": ["<blank>", "a"]})
    assert export.onnx_metadata(path) == {"blank": "0", "vocabulary": '["<blank>", "a"]'}
    assert model.training  # exporting works on a copy: the caller's model is left as it was


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    """Atomic writes: a quantisation that fails mid-way leaves the old file and no temp file."""
    model = small_model(subsample=2)
    fp32 = export.export_onnx(model, tmp_path / "m.onnx", META)
    out = tmp_path / "m.int8.onnx"
    out.write_bytes(b"previous")
    import onnx

    def broken_save(*_a, **_k):
        raise OSError("disk full")
    monkeypatch.setattr(onnx, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        export.quantize_int8(fp32, out)
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.int8.onnx", "m.onnx"]


@pytest.mark.parametrize("name", CONFIGS)
def test_eval_forward_is_the_inference_model_and_training_forward_computes_it(name):
    """In eval mode CTCModel runs its InferenceModel (the one inference forward); the training
    forward, both ways (packed for CUDA, padded for CPU), computes the same function."""
    model = small_model(**CONFIGS[name])
    feats, lengths = batch([45, 30, 7, 44])
    with torch.no_grad():
        out, out_len = model(feats, lengths)
        ref, ref_len = model.inference()(feats, lengths)
        assert torch.equal(out, ref) and torch.equal(out_len, ref_len)
        for packed in (True, False):
            model.rnn.packed = packed
            got, got_len = model.forward_train(feats, lengths)
            assert torch.equal(got_len, out_len) and (got - out).abs().max() <= 1e-4


def test_inference_module_is_made_once_and_follows_the_models_tensors():
    import copy
    import pickle
    model = small_model(norm_type="batch")
    net = model.inference()
    assert model.inference() is net
    assert model.state_dict().keys() == CTCModel(model.cfg, N_FEATS, VOCAB).state_dict().keys()
    feats, lengths = batch([20, 11])
    with torch.no_grad():
        ref, _ = model(feats, lengths)
        model.double()  # buffers are replaced: a new inference module on them
        assert model.inference() is not net
        out, _ = model(feats.double(), lengths)
        assert out.dtype == torch.float32 and (out - ref).abs().max() <= 1e-4
        for other in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
            assert "_inference" not in other.__dict__  # not carried: made again on use
            assert torch.equal(other(feats.double(), lengths)[0], out)


class _SigmoidBlock(ConvBlock):
    """The front-end block with another activation: a change to one layer of asr.inference."""

    def activate(self, y: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.norm(y))


def test_a_layer_changed_once_changes_eval_onnx_and_torchscript(tmp_path, monkeypatch):
    """The model's eval forward and both exports are one definition: a change to a layer of
    asr.inference (here the front-end's activation) reaches all three."""
    import copy

    from asr import inference
    model = small_model(lookahead=2, bidirectional=False)
    feats, lens = batch([40, 23, 31])
    with torch.no_grad():
        before, _ = model(feats, lens)
        monkeypatch.setattr(inference, "ConvBlock", _SigmoidBlock)
        model = copy.deepcopy(model)  # a copy makes its inference module anew: with the change
        after, after_len = model(feats, lens)
    assert (after - before).abs().max() > 1e-2
    export.export_torchscript(model, tmp_path / "m.ts", META)
    scripted, _ = export.load_torchscript(tmp_path / "m.ts")
    onnx_model = export.OnnxAcousticModel(export.export_onnx(model, tmp_path / "m.onnx", META), threads=1)
    with torch.no_grad():
        for out, out_len in (scripted(feats, lens), onnx_model(feats, lens)):
            assert torch.equal(out_len, after_len) and (out - after).abs().max() <= 1e-4
