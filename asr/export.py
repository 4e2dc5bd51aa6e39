"""Export of the acoustic model (asr.model.CTCModel) to ONNX and TorchScript, and int8 ONNX.

Both exports are the model's inference forward, asr.inference.InferenceModel (what CTCModel
runs in eval mode): plain tensor ops on a padded batch, the RNN layers time-major, (T, B, D),
the layout of ONNX's LSTM / GRU ops, so the graph needs no transposes around each of them
(asr.inference says how the pads are kept from the valid frames without packing).

The ONNX graph comes from the TorchScript-based exporter (``dynamo=False``): it maps
nn.LSTM / nn.GRU onto ONNX's LSTM / GRU ops with dynamic batch and time, in about a second.
ONNX's LSTM has no projection (LSTMP, model.projection), so a projected LSTM is exported as
a scripted time loop (an ONNX Loop); the dynamo exporter was no help there: it unrolls the
LSTMP over the example's time steps, fixing the time axis.

Metadata (vocabulary, blank, subsampling, feature settings, toolkit version: the dict of
asr.bundle.export_metadata) goes into the ONNX model's metadata_props and a TorchScript
file's ``metadata.json`` extra file. Every file is written atomically (asr.utils).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from asr.inference import Direction, InferenceModel, output_lengths  # noqa: F401 (re-exported)
from asr.model import CTCModel
from asr.utils import atomic_open, atomic_path

INPUT_NAMES = ["feats", "lengths"]
OUTPUT_NAMES = ["log_probs", "out_lengths"]
METADATA_FILE = "metadata.json"  # the TorchScript extra file holding the metadata
INT8_OPS = ["LSTM", "GRU", "MatMul", "Gemm"]  # the ops quantize_int8 makes int8 (not Conv)


# ---------------------------------------------------------------- ONNX

def _lstmp_scan(x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor,
                b_hh: torch.Tensor, w_hr: torch.Tensor) -> torch.Tensor:
    """A projected LSTM (nn.LSTM with proj_size, one direction, zero initial state) as an
    explicit loop over time, for ONNX (which has no LSTMP op); run scripted (_scripted_scan), so
    the exporter keeps the loop (ONNX Loop) rather than unrolling it for the example's length.
    Time-major: (T, B, I) -> (T, B, P)."""
    gates_x = torch.matmul(x, w_ih.t()) + b_ih + b_hh
    h = torch.zeros(x.size(1), w_hr.size(0), dtype=x.dtype, device=x.device)
    c = torch.zeros(x.size(1), w_hr.size(1), dtype=x.dtype, device=x.device)
    outs: list[torch.Tensor] = []
    for t in range(x.size(0)):
        gates = gates_x[t] + torch.matmul(h, w_hh.t())
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.matmul(torch.sigmoid(o) * torch.tanh(c), w_hr.t())
        outs.append(h)
    return torch.stack(outs, 0)


@functools.cache
def _scripted_scan():
    """_lstmp_scan compiled by torch.jit.script, once, on first use (not at import: torch 2.14
    warns that TorchScript is deprecated; both exporters still rest on it)."""
    with _no_deprecation_notes():
        return torch.jit.script(_lstmp_scan)


@contextlib.contextmanager
def _no_deprecation_notes(exporter: bool = False):
    """torch 2.14 marks torch.jit and the TorchScript-based ONNX exporter deprecated (in
    favour of torch.export, which cannot export a projected LSTM with a dynamic time axis):
    those notices are not the user's to act on. exporter: also the ONNX exporter's general
    cautions (tracer notes, "a batch size other than 1 with LSTM/GRU...", constant folding),
    which the export tests show do not apply (other batch sizes and lengths give equal outputs)."""
    with warnings.catch_warnings():
        if exporter:
            warnings.simplefilter("ignore")
        warnings.filterwarnings("ignore", r".*(is deprecated|legacy TorchScript-based ONNX)",
                                category=FutureWarning)
        warnings.filterwarnings("ignore", r".*(is deprecated|legacy TorchScript-based ONNX)",
                                category=DeprecationWarning)
        yield


class LoopDirection(Direction):
    """A projected LSTM direction as _lstmp_scan: the ONNX form (ONNX's LSTM has no
    projection). Only traced by export_onnx, never scripted (TorchScript keeps nn.LSTM)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.rnn
        return _scripted_scan()(x, r.weight_ih_l0, r.weight_hh_l0, r.bias_ih_l0,
                                r.bias_hh_l0, r.weight_hr_l0)


def onnx_direction(rnn: nn.RNNBase) -> Direction:
    """InferenceModel's `direction` for ONNX: a projected LSTM as LoopDirection (the native
    kernel stays faster elsewhere), any other RNN as Direction (ONNX's LSTM / GRU op)."""
    projected = isinstance(rnn, nn.LSTM) and rnn.proj_size > 0
    return LoopDirection(rnn) if projected else Direction(rnn)


def _cpu_copy(model: CTCModel) -> CTCModel:
    """An eval-mode CPU copy: exporting leaves the caller's model where and as it was."""
    return copy.deepcopy(model).cpu().eval()


def _example(model: CTCModel, batch: int = 2, frames: int = 37):
    n_feats = model.cmvn_mean.numel()
    feats = torch.randn(batch, frames, n_feats) * model.cmvn_std + model.cmvn_mean
    return feats, torch.tensor([frames] + [max(1, frames - 5 * i) for i in range(1, batch)])


def _metadata_strings(metadata: dict) -> dict[str, str]:
    """ONNX metadata values are strings: strings are kept, anything else is stored as JSON."""
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}


def export_onnx(model: CTCModel, path: str | Path, metadata: dict, opset: int = 17) -> Path:
    """Write `model` as ONNX (inputs feats, lengths; outputs log_probs, out_lengths; batch and
    time dynamic), `metadata` in metadata_props (values: strings as given, others as JSON).

    The graph is built in memory, the metadata added, and the file written atomically.
    """
    import onnx
    model = _cpu_copy(model)
    net = InferenceModel(model, direction=onnx_direction)
    feats, lengths = _example(model)
    buf = io.BytesIO()
    with torch.no_grad(), _no_deprecation_notes(exporter=True):
        torch.onnx.export(net, (feats, lengths), buf, dynamo=False, opset_version=opset,
                          input_names=INPUT_NAMES, output_names=OUTPUT_NAMES,
                          dynamic_axes={"feats": {0: "batch", 1: "frames"}, "lengths": {0: "batch"},
                                        "log_probs": {0: "batch", 1: "out_frames"},
                                        "out_lengths": {0: "batch"}})
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto)
    _set_metadata(proto, _metadata_strings(metadata))
    with atomic_open(path, "wb") as f:
        f.write(proto.SerializeToString())
    return Path(path)


def _set_metadata(proto, metadata: dict[str, str]) -> None:
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def onnx_metadata(path: str | Path) -> dict[str, str]:
    """The metadata_props of an ONNX file (as stored: strings)."""
    import onnx
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def quantize_int8(onnx_path: str | Path, out_path: str | Path) -> Path:
    """Dynamic int8 quantisation (onnxruntime.quantization.quantize_dynamic: int8 weights,
    activations quantised on the fly) of an exported model's RNN and matrix-product ops; its
    metadata is carried over, plus "quantization": "int8-dynamic". Written atomically.

    The convolutional frontend stays fp32: it holds under 1 % of the weights, and onnxruntime's
    ConvInteger ran 8x slower than its fp32 Conv (263 vs 32 ms on the bench-ship batch), more
    than the int8 LSTMs saved. Weights get a scale per output channel (per_channel): on the
    demo model the int8 and fp32 networks then pick the same unit at 99.55 % of the test set's
    frames, against 99.30 % with one scale per tensor, at the same speed."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    source = onnx_metadata(onnx_path)
    with atomic_path(out_path, suffix=".onnx") as tmp:
        root = logging.getLogger()
        root.addFilter(_quantizer_notes)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_dynamic(str(onnx_path), str(tmp), weight_type=QuantType.QInt8,
                                 op_types_to_quantize=INT8_OPS, per_channel=True)
        finally:
            root.removeFilter(_quantizer_notes)
        proto = onnx.load(str(tmp))
        _set_metadata(proto, {**source, "quantization": "int8-dynamic"})
        onnx.save(proto, str(tmp))
    return Path(out_path)


def _quantizer_notes(record: logging.LogRecord) -> bool:
    """Drop the quantizer's root-logger notes (run pre-processing first; integer tensors such as
    the lookahead's Pad amounts are left unquantised): expected, and not the user's to act on."""
    return "onnxruntime" not in record.pathname or record.levelno > logging.WARNING


class OnnxAcousticModel:
    """An exported .onnx model run with onnxruntime on the CPU, called like CTCModel:
    ``model(feats (B, T, F), lengths (B,)) -> (log_probs (B, T', V), out_lengths (B,))`` as
    CPU torch tensors, so the decoders take it in place of the PyTorch model.

    threads: onnxruntime intra-op threads (0 = its default, all cores). `.metadata`: the
    file's metadata_props (strings, as export_onnx stored them).

    Its threads do not spin waiting for work after a run: between runs the same cores compute
    features and decode, and spinning threads starved them (the STFT took 7x longer).
    """

    def __init__(self, path: str | Path, threads: int = 0):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, feats: torch.Tensor, lengths: torch.Tensor):
        log_probs, out_lengths = self.session.run(OUTPUT_NAMES, {
            "feats": feats.detach().float().cpu().numpy(),
            "lengths": lengths.detach().long().cpu().numpy()})
        return torch.from_numpy(log_probs), torch.from_numpy(out_lengths)

    def eval(self) -> "OnnxAcousticModel":
        """No-op, for callers that put the model in eval mode first."""
        return self


# ---------------------------------------------------------------- TorchScript

def export_torchscript(model: CTCModel, path: str | Path, metadata: dict) -> Path:
    """Write the model's inference forward (model.inference(), an InferenceModel) as
    TorchScript (torch.jit.script: batch and time stay dynamic, no example input fixes them),
    `metadata` as the JSON extra file metadata.json. Written atomically; the file holds CPU
    weights (move the loaded module with .to())."""
    model = _cpu_copy(model)
    with _no_deprecation_notes(), atomic_path(path) as tmp:
        scripted = torch.jit.script(model.inference())
        torch.jit.save(scripted, str(tmp), _extra_files={METADATA_FILE: json.dumps(metadata)})
    return Path(path)


def load_torchscript(path: str | Path, device: str | torch.device = "cpu"):
    """(module in eval mode, metadata dict) of an export_torchscript file."""
    extra = {METADATA_FILE: ""}
    with _no_deprecation_notes():
        module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    raw = extra[METADATA_FILE]
    return module.eval(), json.loads(raw.decode() if isinstance(raw, bytes) else raw or "{}")
