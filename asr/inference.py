"""The inference forward of the acoustic model (asr.model.CTCModel), and the padded-batch
primitives it shares with the model's training forward.

InferenceModel computes CTCModel's function on a padded batch with plain tensor ops that both
exporters carry (PackedSequence is carried by none): CTCModel runs it in eval mode on any device,
asr.export exports it (ONNX, TorchScript), and asr.streaming runs its stages chunk by chunk. The
RNN layers run time-major, (T, B, D), the layout of ONNX's LSTM / GRU ops, so an exported graph
needs no transposes around them:

* the forward direction of each layer runs on the padded batch as is: an RNN's output at a
  valid frame depends only on the frames before it, never on the pads after it;
* the reverse direction reverses each sequence within its own length (one row gather of the
  (T * B, D) batch), runs a unidirectional RNN holding the ``*_reverse`` weights and reverses
  back; the pads stay after the valid frames, so they never reach a valid output either;
* pads are therefore zeroed once, after the last layer (the training forward zeroes them after
  each), so the lookahead and the output layer see what they see in training (outputs are
  equal at every frame, pads too).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F


def time_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, T) float mask: 1 at valid frames, 0 at padded ones."""
    return (torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]).float()


def reverse_index(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, T) gather index that reverses each sequence within its own length (pads stay put);
    it is its own inverse, so the same gather undoes it."""
    t = torch.arange(frames, device=lengths.device)[None, :]
    n = lengths[:, None]
    return torch.where(t < n, n - 1 - t, t)


def one_direction(rnn: nn.RNNBase, suffix: str, batch_first: bool = True) -> nn.RNNBase:
    """A unidirectional view of one direction of `rnn` ("" forward, "_reverse" backward) that
    shares its Parameters (no copy: training the model trains this, and the reverse);
    batch_first=False: it takes time-major (T, B, D) input."""
    kw = {"proj_size": rnn.proj_size} if isinstance(rnn, nn.LSTM) and rnn.proj_size else {}
    with torch.device("meta"):  # its own weights are replaced at once: never allocate them
        single = type(rnn)(rnn.input_size, rnn.hidden_size, num_layers=1, bias=rnn.bias,
                           batch_first=batch_first, bidirectional=False, **kw)
    for name in single._flat_weights_names:  # RNNBase.__setattr__ keeps _flat_weights in step
        setattr(single, name, getattr(rnn, name + suffix))
    return single


def halve(lengths: torch.Tensor) -> torch.Tensor:
    """(n - 1) // 2 + 1 (a stride-2, kernel-3, pad-1 conv) written as (n + 1) // 2: the same for
    n >= 0, and never negative, so ONNX's truncating integer Div gives the floor too."""
    return torch.div(lengths + 1, 2, rounding_mode="floor")


def output_lengths(lengths: torch.Tensor, subsample: int) -> torch.Tensor:
    """asr.model.output_frames with tensor ops (traceable, exportable)."""
    for _ in range(subsample.bit_length() - 1):
        lengths = halve(lengths)
    return lengths


def reverse_rows(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """(T * B,) row index into a time-major (T, B, D) batch seen as (T * B, D) rows that
    reverses each sequence within its own length (pads stay put); its own inverse."""
    rev = reverse_index(lengths, frames).t()  # (T, B): source frame of each (t, b)
    batch = lengths.shape[0]
    return (rev * batch + torch.arange(batch, device=lengths.device)[None, :]).reshape(-1)


def take_rows(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """x (T, B, D) reordered by a reverse_rows index: one row gather (ONNX Gather)."""
    return x.reshape(-1, x.shape[2]).index_select(0, rows).view(x.shape)


def time_major(x: torch.Tensor) -> torch.Tensor:
    """The conv front-end's (B, C, T, F) output as RNN input frames (T, B, C * F)."""
    b, c, t, f = x.shape
    return x.permute(2, 0, 1, 3).reshape(t, b, c * f)


def eval_batchnorm(norm: nn.Module) -> nn.Module:
    """A plain BatchNorm of norm's kind on norm's tensors (shared, not copied), in eval mode:
    scriptable (MaskedBatchNorm2d's training path is not), and on running statistics even
    while the model it came from trains."""
    cls = nn.BatchNorm2d if isinstance(norm, nn.BatchNorm2d) else nn.BatchNorm1d
    with torch.device("meta"):  # its own tensors are replaced at once
        plain = cls(norm.num_features, norm.eps, norm.momentum)
    plain.weight, plain.bias = norm.weight, norm.bias
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        setattr(plain, name, getattr(norm, name))
    return plain.eval()


class Direction(nn.Module):
    """One direction of one RNN layer on a padded time-major (T, B, D) batch: the native kernel."""

    def __init__(self, rnn: nn.RNNBase):
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return out


class ConvBlock(nn.Module):
    """One conv + BatchNorm + ReLU of the front-end, lengths updated, padded frames zeroed."""

    def __init__(self, conv: nn.Conv2d, norm: nn.BatchNorm2d, stride: int):
        super().__init__()
        self.conv = conv
        self.norm = eval_batchnorm(norm)
        self.halves = stride == 2

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        x = self.activate(self.conv(x))
        if self.halves:
            lengths = halve(lengths)
        return x * time_mask(lengths, x.shape[2])[:, None, :, None], lengths

    def activate(self, y: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(y))

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """The block on frames that bring their own time context (streaming): no time padding."""
        c = self.conv
        return self.activate(F.conv2d(x, c.weight, c.bias, c.stride, (0, c.padding[1])))


class RNNLayer(nn.Module):
    """One RNNStack layer, time-major: forward direction on the padded batch, reverse direction
    on each sequence reversed within its length, then the norm (per frame). `direction` wraps
    each unidirectional view (asr.export swaps in an ONNX loop for a projected LSTM)."""

    def __init__(self, rnn: nn.RNNBase, norm: nn.Module, direction: Callable = Direction):
        super().__init__()
        self.forward_rnn = direction(one_direction(rnn, "", batch_first=False))
        self.bidirectional = rnn.bidirectional
        self.backward_rnn = (direction(one_direction(rnn, "_reverse", batch_first=False))
                             if rnn.bidirectional else nn.Identity())
        self.flat = isinstance(norm, nn.BatchNorm1d)  # BatchNorm1d wants (N, C) frames
        self.norm = eval_batchnorm(norm) if self.flat else norm

    def forward(self, x: torch.Tensor, rev: torch.Tensor) -> torch.Tensor:
        y = self.forward_rnn(x)
        if self.bidirectional:
            y = torch.cat([y, take_rows(self.backward_rnn(take_rows(x, rev)), rev)], 2)
        return self.normalise(y)

    def normalise(self, y: torch.Tensor) -> torch.Tensor:
        if self.flat:  # running statistics, so per frame
            return self.norm(y.flatten(0, 1)).view_as(y)
        return self.norm(y)

    def step(self, x: torch.Tensor, state):
        """A unidirectional layer on the next frames (T, 1, D) from `state` (None at the start):
        (output, state to carry); streaming."""
        y, state = self.forward_rnn.rnn(x, state)
        return self.normalise(y), state


class InferenceModel(nn.Module):
    """The inference forward: (feats (B, T, F) float32, lengths (B,) int64) -> (log_probs
    (B, T', V), out_lengths (B,)), CTCModel's function without PackedSequence, time-major.
    CTCModel runs it in eval mode, asr.export exports it (ONNX, TorchScript), asr.streaming
    runs its stages (normalise, frontend blocks, layers' step, lookahead.mix, log_probs).

    Built from a CTCModel (CTCModel.inference() keeps one), sharing its weights (submodules
    and Parameters, not copies); always in eval mode (dropout off, BatchNorm on running
    statistics), as an exported model is. direction: the wrapper of each RNN direction
    (Direction: the native kernel; asr.export passes its ONNX loop for a projected LSTM).
    """

    def __init__(self, model: nn.Module, direction: Callable = Direction):
        super().__init__()
        self.register_buffer("cmvn_mean", model.cmvn_mean)
        self.register_buffer("cmvn_std", model.cmvn_std)
        front = model.frontend
        self.frontend = nn.ModuleList(ConvBlock(c, n, s) for c, n, s in
                                      zip(front.convs, front.norms, front.strides))
        self.layers = nn.ModuleList(RNNLayer(r, n, direction)
                                    for r, n in zip(model.rnn.rnns, model.rnn.norms))
        self.has_lookahead = model.lookahead is not None
        self.lookahead = model.lookahead if self.has_lookahead else nn.Identity()
        self.output = model.output
        self.eval()

    def train(self, mode: bool = True) -> "InferenceModel":
        """Stays in eval mode: the packing-free path equals CTCModel only in eval (no dropout,
        BatchNorm without batch statistics)."""
        return super().train(False)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor):
        x = self.normalise(feats) * time_mask(lengths, feats.shape[1])[:, :, None]
        x = x.unsqueeze(1)  # (B, 1, T, F)
        for block in self.frontend:
            x, lengths = block(x, lengths)
        t = x.shape[2]
        x = time_major(x)
        rev = reverse_rows(lengths, t)
        for layer in self.layers:
            x = layer(x, rev)
        x = x * time_mask(lengths, t).t()[:, :, None]  # pads to zero, as training leaves them
        if self.has_lookahead:  # a convolution over time: batch-major, as in training
            return self.log_probs(self.lookahead(x.transpose(0, 1))), lengths
        # per frame: the (smaller) log-probabilities are made batch-major, laid out as training's
        return self.log_probs(x).transpose(0, 1).contiguous(), lengths

    def normalise(self, feats: torch.Tensor) -> torch.Tensor:
        return (feats - self.cmvn_mean) / self.cmvn_std

    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(x).float().log_softmax(dim=-1)
