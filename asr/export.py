"""Export of the acoustic model (asr.model.CTCModel) to ONNX and TorchScript, and int8 ONNX.

InferenceModel computes CTCModel's function on a padded batch with plain tensor ops that both
exporters carry (the padded way asr.model.RNNStack runs on CPU; on CUDA the model runs
PackedSequences, which no exporter carries). The RNN layers run time-major, (T, B, D), the
layout of ONNX's LSTM / GRU ops, so the graph needs no transposes around each of them:

* the forward direction of each RNN layer runs on the padded batch as is: an RNN's output at
  a valid frame depends only on the frames before it, never on the pads after it;
* the reverse direction reverses each sequence within its own length (one row gather of the
  (T * B, D) batch), runs a unidirectional RNN holding the ``*_reverse`` weights and reverses
  back; the pads stay after the valid frames, so they never reach a valid output either;
* pads are therefore zeroed once, after the last layer (CTCModel zeroes them after each), so
  the lookahead convolution and the output layer see exactly what they see in CTCModel
  (outputs match at every frame, pads too).

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

from asr.model import CTCModel, one_direction, reverse_index, time_mask
from asr.utils import atomic_open, atomic_path

INPUT_NAMES = ["feats", "lengths"]
OUTPUT_NAMES = ["log_probs", "out_lengths"]
METADATA_FILE = "metadata.json"  # the TorchScript extra file holding the metadata
INT8_OPS = ["LSTM", "GRU", "MatMul", "Gemm"]  # the ops quantize_int8 makes int8 (not Conv)


# ---------------------------------------------------------------- the inference path

def _halve(lengths: torch.Tensor) -> torch.Tensor:
    """(n - 1) // 2 + 1 (a stride-2, kernel-3, pad-1 conv) written as (n + 1) // 2: the same for
    n >= 0, and never negative, so ONNX's truncating integer Div gives the floor too."""
    return torch.div(lengths + 1, 2, rounding_mode="floor")


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


class Direction(nn.Module):
    """One direction of one RNN layer on a padded time-major (T, B, D) batch: the native kernel."""

    def __init__(self, rnn: nn.RNNBase):
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return out


class LoopDirection(Direction):
    """A projected LSTM direction as _lstmp_scan: the ONNX form (ONNX's LSTM has no
    projection). Only traced by export_onnx, never scripted."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.rnn
        return _scripted_scan()(x, r.weight_ih_l0, r.weight_hh_l0, r.bias_ih_l0,
                                r.bias_hh_l0, r.weight_hr_l0)


def _direction(rnn: nn.RNNBase, suffix: str, onnx_loop: bool) -> Direction:
    view = one_direction(rnn, suffix, batch_first=False)
    projected = isinstance(rnn, nn.LSTM) and rnn.proj_size > 0
    return LoopDirection(view) if onnx_loop and projected else Direction(view)


def reverse_rows(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """(T * B,) row index into a time-major (T, B, D) batch seen as (T * B, D) rows that
    reverses each sequence within its own length (pads stay put); its own inverse."""
    rev = reverse_index(lengths, frames).t()  # (T, B): source frame of each (t, b)
    batch = lengths.shape[0]
    return (rev * batch + torch.arange(batch, device=lengths.device)[None, :]).reshape(-1)


def take_rows(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """x (T, B, D) reordered by a reverse_rows index: one row gather (ONNX Gather)."""
    return x.reshape(-1, x.shape[2]).index_select(0, rows).view(x.shape)


class RNNLayer(nn.Module):
    """One layer of RNNStack without packing, time-major: forward direction on the padded
    batch, reverse direction on each sequence reversed within its length, then the norm."""

    def __init__(self, rnn: nn.RNNBase, norm: nn.Module, onnx_loop: bool):
        super().__init__()
        self.forward_rnn = _direction(rnn, "", onnx_loop)
        self.bidirectional = rnn.bidirectional
        self.backward_rnn = _direction(rnn, "_reverse", onnx_loop) if rnn.bidirectional else nn.Identity()
        self.norm = norm
        self.channels_first = isinstance(norm, nn.BatchNorm1d)  # BatchNorm1d wants (B, C, T)

    def forward(self, x: torch.Tensor, rev: torch.Tensor) -> torch.Tensor:
        y = self.forward_rnn(x)
        if self.bidirectional:
            y = torch.cat([y, take_rows(self.backward_rnn(take_rows(x, rev)), rev)], 2)
        if self.channels_first:  # eval BatchNorm: running statistics, so per frame
            return self.norm(y.permute(1, 2, 0)).permute(2, 0, 1)
        return self.norm(y)


class ConvBlock(nn.Module):
    """One conv + BatchNorm + ReLU of the front-end, lengths updated, padded frames zeroed."""

    def __init__(self, conv: nn.Conv2d, norm: nn.BatchNorm2d, stride: int):
        super().__init__()
        self.conv = conv
        # a plain BatchNorm2d on norm's tensors: MaskedBatchNorm2d's training path does not script
        self.norm = nn.BatchNorm2d(norm.num_features, norm.eps, norm.momentum)
        self.norm.weight, self.norm.bias = norm.weight, norm.bias
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            setattr(self.norm, name, getattr(norm, name))
        self.halves = stride == 2

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        x = torch.relu(self.norm(self.conv(x)))
        if self.halves:
            lengths = _halve(lengths)
        return x * time_mask(lengths, x.shape[2])[:, None, :, None], lengths


class InferenceModel(nn.Module):
    """CTCModel's forward without PackedSequence: (feats (B, T, F) float32, lengths (B,) int64)
    -> (log_probs (B, T', V), out_lengths (B,)), equal to CTCModel.forward at every frame.

    Built from a CTCModel, sharing its weights (submodules and Parameters, not copies); always
    in eval mode (dropout off, BatchNorm on running statistics), as an exported model is.
    onnx_loop: projected LSTMs as LoopDirection (export_onnx sets it; leave it off
    otherwise: the native kernel is faster).
    """

    def __init__(self, model: CTCModel, onnx_loop: bool = False):
        super().__init__()
        self.register_buffer("cmvn_mean", model.cmvn_mean)
        self.register_buffer("cmvn_std", model.cmvn_std)
        front = model.frontend
        self.frontend = nn.ModuleList(ConvBlock(c, n, s) for c, n, s in
                                      zip(front.convs, front.norms, front.strides))
        self.layers = nn.ModuleList(RNNLayer(r, n, onnx_loop)
                                    for r, n in zip(model.rnn.rnns, model.rnn.norms))
        self.has_lookahead = model.lookahead is not None
        self.lookahead = model.lookahead if self.has_lookahead else nn.Identity()
        self.output = model.output
        self.subsample = model.cfg.subsample
        self.eval()

    def train(self, mode: bool = True) -> "InferenceModel":
        """Stays in eval mode: the packing-free path equals CTCModel only in eval (no dropout,
        BatchNorm without batch statistics)."""
        return super().train(False)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor):
        x = (feats - self.cmvn_mean) / self.cmvn_std * time_mask(lengths, feats.shape[1])[:, :, None]
        x = x.unsqueeze(1)  # (B, 1, T, F)
        for block in self.frontend:
            x, lengths = block(x, lengths)
        b, c, t, f = x.shape
        x = x.permute(2, 0, 1, 3).reshape(t, b, c * f)  # time-major (T, B, D)
        rev = reverse_rows(lengths, t)
        for layer in self.layers:
            x = layer(x, rev)
        x = x * time_mask(lengths, t).t()[:, :, None]  # pads to zero, as CTCModel leaves them
        if self.has_lookahead:  # a convolution over time: batch-major, as CTCModel runs it
            logits = self.output(self.lookahead(x.transpose(0, 1)))
        else:  # per frame: transpose the (smaller) logits instead
            logits = self.output(x).transpose(0, 1)
        return logits.float().log_softmax(dim=-1), lengths


def output_lengths(lengths: torch.Tensor, subsample: int) -> torch.Tensor:
    """asr.model.output_frames with tensor ops (traceable, exportable)."""
    for _ in range(subsample.bit_length() - 1):
        lengths = _halve(lengths)
    return lengths


# ---------------------------------------------------------------- ONNX

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
    net = InferenceModel(model, onnx_loop=True)
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
    """Write InferenceModel(model) as TorchScript (torch.jit.script: batch and time stay
    dynamic, no example input fixes them), `metadata` as the JSON extra file metadata.json.
    Written atomically; the file holds CPU weights (move the loaded module with .to())."""
    model = _cpu_copy(model)
    with _no_deprecation_notes(), atomic_path(path) as tmp:
        scripted = torch.jit.script(InferenceModel(model))
        torch.jit.save(scripted, str(tmp), _extra_files={METADATA_FILE: json.dumps(metadata)})
    return Path(path)


def load_torchscript(path: str | Path, device: str | torch.device = "cpu"):
    """(module in eval mode, metadata dict) of an export_torchscript file."""
    extra = {METADATA_FILE: ""}
    with _no_deprecation_notes():
        module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    raw = extra[METADATA_FILE]
    return module.eval(), json.loads(raw.decode() if isinstance(raw, bytes) else raw or "{}")
