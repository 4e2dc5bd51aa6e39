"""The acoustic model: CMVN -> conv subsampling -> bidirectional LSTM/GRU stack -> Linear.

Padding changes nothing: normalised padding and padded conv outputs are zeroed, and the RNNs
never let a padded frame reach a valid one, so an utterance gets the same output alone or in
any batch.

CTCModel runs one of two ways. Training (forward_train): RNNStack on packed sequences on CUDA,
on the padded batch (each sequence reversed within its length for the reverse direction) on
CPU. Inference (eval mode, any device): asr.inference.InferenceModel, the one inference
forward (time-major); the ONNX and TorchScript exports are that module (asr.export), and
streaming (asr.streaming) runs its stages chunk by chunk.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from asr.config import ModelConfig
from asr.inference import InferenceModel, one_direction, reverse_index, time_mask


def output_frames(frames: int, subsample: int) -> int:
    """Frames after the conv front-end: each stride-2 conv (kernel 3, pad 1) maps T to (T-1)//2+1."""
    for _ in range(subsample.bit_length() - 1):  # log2: subsample is 2 or 4
        frames = (frames - 1) // 2 + 1
    return frames


def frame_seconds(hop_ms: float, subsample: int) -> float:
    """Duration of one model output frame: the feature hop times the time subsampling
    (10 ms x 4 = 40 ms by default). Word times and subtitles are counted in these frames."""
    return hop_ms / 1000.0 * subsample


class MaskedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics come from valid frames only: with padding in the
    statistics, a model would be normalised differently in a batch than alone at inference.

    forward(x, mask): x (B, C, T, F) must be zero at its padded frames (ConvSubsampler makes it
    so) and mask (B, 1, T, 1) is 1 at valid frames; the output is zero at padded frames too, in
    training and in eval mode. Without a mask it is plain BatchNorm2d, so state dicts and export
    match. The statistics are two reductions over x and the output one pass (no masked copies:
    this runs on the largest tensors of a training step)."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            return super().forward(x)
        if self.training:
            n = (mask.sum() * x.shape[3]).clamp(min=2)
            mean = x.sum((0, 2, 3), dtype=torch.float32) / n  # the padded frames add zeros
            sq = torch.linalg.vector_norm(x, dim=(0, 2, 3), dtype=torch.float32) ** 2
            var = (sq / n - mean * mean).clamp(min=0)  # fp32 statistics under autocast too
            with torch.no_grad():
                self.num_batches_tracked += 1
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * n / (n - 1), self.momentum)  # unbiased, as BatchNorm
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight * torch.rsqrt(var + self.eps)
        shift = (self.bias - mean * scale)[None, :, None, None] * mask  # (B, C, T, 1): 0 at pads
        return torch.addcmul(shift, x, scale[None, :, None, None])


def zero_past_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x (B, C, T, F), the output of a bias-free conv of kernel 3 over input that is zero past
    its lengths, with its padded frames zeroed in place: only the first one (frame `length`) can
    see a valid input frame; the ones after it are zeros already."""
    rows = torch.nonzero(lengths < x.shape[2]).squeeze(1)
    x[rows, :, lengths[rows], :] = 0
    return x


class ConvSubsampler(nn.Module):
    """Two 3x3 conv layers (BatchNorm, ReLU), stride 2 in frequency each and 2 in time in the
    first (subsample=2) or both (subsample=4); output (B, T', channels * F/4)."""

    def __init__(self, n_feats: int, channels: int, subsample: int):
        super().__init__()
        self.subsample = subsample
        second = 2 if subsample == 4 else 1
        self.convs = nn.ModuleList([
            nn.Conv2d(1, channels, 3, stride=(2, 2), padding=1, bias=False),  # BatchNorm follows
            nn.Conv2d(channels, channels, 3, stride=(second, 2), padding=1, bias=False)])
        self.norms = nn.ModuleList([MaskedBatchNorm2d(channels), MaskedBatchNorm2d(channels)])
        self.strides = [2, second]
        self.out_dim = channels * math.ceil(math.ceil(n_feats / 2) / 2)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        x = x.unsqueeze(1)  # (B, 1, T, F), zero past each length (forward_train masks it)
        for conv, norm, stride in zip(self.convs, self.norms, self.strides):
            x = conv(x)
            if stride == 2:
                lengths = (lengths - 1) // 2 + 1
            x = zero_past_lengths(x, lengths)  # in place: the conv does not keep its output
            mask = time_mask(lengths, x.shape[2])[:, None, :, None].to(x.dtype)
            x = torch.relu(norm(x, mask))  # zero past each length again
        b, c, t, f = x.shape
        return x.permute(0, 2, 1, 3).reshape(b, t, c * f), lengths


RNN_CLASSES = {"lstm": nn.LSTM, "gru": nn.GRU}


@functools.lru_cache(maxsize=None)
def cpu_autocast_rnn_works(rnn_type: str, dtype: torch.dtype = torch.bfloat16) -> bool:
    """Whether an `rnn_type` layer runs forward and backward under CPU autocast to `dtype`.
    oneDNN's fused bf16 LSTM needs AVX-512 (BF16 or core); on an AVX2-only CPU creating the
    primitive fails at the first update. A tiny probe, run once per process, tells."""
    rnn = RNN_CLASSES[rnn_type](4, 4, batch_first=True, bidirectional=True)
    x = torch.zeros(1, 3, 4, requires_grad=True)
    try:
        with torch.autocast("cpu", dtype=dtype):
            y, _ = rnn(x)
        y.float().sum().backward()
    except RuntimeError:
        return False
    return True
NORM_CLASSES = {"layer": nn.LayerNorm, "batch": nn.BatchNorm1d}  # "none": nn.Identity


def gather_time(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, T, D) reordered in time per sequence by a (B, T) index."""
    return torch.gather(x, 1, index.unsqueeze(2).expand(-1, -1, x.shape[2]))


class RNNStack(nn.Module):
    """LSTM/GRU layers (bidirectional, or unidirectional for streaming); the normalisation
    (LayerNorm, or sequence-wise BatchNorm) + dropout between layers see only valid frames, and
    padded frames never reach a valid output. out_dim is the per-frame output size. Its
    forward is the training one: inference runs the same layers as InferenceModel's RNNLayers.

    Two equal ways to run it (the same function, frame for frame): on CUDA the layers take one
    PackedSequence (cuDNN's variable-length kernels); on CPU the padded batch itself, which is
    ~2.5x faster per layer there (PyTorch's packed CPU path slices every time step, and the
    backward pass zero-fills a full-size gradient for each slice). Padded, the forward
    direction runs on the batch as it is (an RNN's output at a valid frame depends only on the
    frames before it) and the reverse direction on each sequence reversed within its own length;
    after each layer the padded frames are zeroed. `packed` forces one way (None: by device).
    `fp32` runs the RNN layers outside autocast (a CPU without a bf16 LSTM kernel).
    """

    def __init__(self, input_dim: int, cfg: ModelConfig):
        super().__init__()
        rnn_cls = RNN_CLASSES[cfg.rnn_type]  # the choices were checked by ModelConfig
        directions = 2 if cfg.bidirectional else 1
        self.out_dim = directions * (cfg.projection or cfg.rnn_hidden)
        extra = {"proj_size": cfg.projection} if cfg.projection else {}
        dims = [input_dim] + [self.out_dim] * cfg.rnn_layers
        self.rnns = nn.ModuleList(rnn_cls(dims[i], cfg.rnn_hidden, batch_first=True,
                                          bidirectional=cfg.bidirectional, **extra)
                                  for i in range(cfg.rnn_layers))
        norm_cls = NORM_CLASSES.get(cfg.norm_type)
        self.norms = nn.ModuleList(norm_cls(self.out_dim) if norm_cls else nn.Identity()
                                   for _ in range(cfg.rnn_layers))
        self.dropout = nn.Dropout(cfg.dropout)
        self.bidirectional = cfg.bidirectional
        self.packed: bool | None = None
        self.fp32: bool = False  # run the RNN layers in fp32 inside an autocast region
        # unregistered views of each layer's two directions (their Parameters are the layer's)
        object.__setattr__(self, "_directions", None)

    def directions(self) -> list[tuple[nn.RNNBase, nn.RNNBase]]:
        """(forward, reverse) unidirectional views of every bidirectional layer, made once."""
        if self._directions is None:
            object.__setattr__(self, "_directions", [(one_direction(r, ""), one_direction(r, "_reverse"))
                                                     for r in self.rnns])
        return self._directions

    def run(self, rnn: nn.RNNBase, x):
        """rnn(x)'s output sequence (a tensor or PackedSequence), in fp32 when self.fp32."""
        if not self.fp32:
            return rnn(x)[0]
        with torch.autocast(x.data.device.type, enabled=False):
            return rnn(x.float())[0]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = x.is_cuda if self.packed is None else self.packed
        return self.forward_packed(x, lengths) if packed else self.forward_padded(x, lengths)

    def forward_packed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        total = x.shape[1]
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        for rnn, norm in zip(self.rnns, self.norms):
            out = self.run(rnn, packed)
            packed = PackedSequence(self.dropout(norm(out.data)), out.batch_sizes,
                                    out.sorted_indices, out.unsorted_indices)
        x, _ = pad_packed_sequence(packed, batch_first=True, total_length=total)
        return x

    def forward_padded(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = lengths.to(x.device)
        mask = time_mask(lengths, x.shape[1]).to(x.dtype)[:, :, None]
        valid = mask[:, :, 0].bool()
        rev = reverse_index(lengths, x.shape[1]) if self.bidirectional else None
        views = self.directions() if self.bidirectional else None
        for k, (rnn, norm) in enumerate(zip(self.rnns, self.norms)):
            if views is None:
                y = self.run(rnn, x)
            else:
                forward, backward = views[k]
                back = self.run(backward, gather_time(x, rev))
                y = torch.cat([self.run(forward, x), gather_time(back, rev)], 2)
            if isinstance(norm, nn.BatchNorm1d):  # statistics of valid frames
                y = y.masked_scatter(valid[:, :, None], norm(y[valid]))
            else:  # LayerNorm (or none): per frame
                y = norm(y)
            x = self.dropout(y) * mask
        return x


class Lookahead(nn.Module):
    """DeepSpeech2's lookahead (row) convolution: each output frame mixes, per feature, the
    current frame and the next `context` ones, giving a unidirectional model some future
    context at a fixed latency."""

    def __init__(self, dim: int, context: int):
        super().__init__()
        self.context = context
        self.conv = nn.Conv1d(dim, dim, context + 1, groups=dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D), zeros past each length
        return self.mix(F.pad(x.transpose(1, 2), (0, self.context))).transpose(1, 2)

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D, T + context) -> (B, D, T): frames followed by their future (streaming: the
        frames that arrived; offline: zeros past the end)."""
        return torch.relu(self.conv(x))


class CTCModel(nn.Module):
    """Features (B, T, F) + lengths -> log-probabilities (B, T', vocab) in fp32 + output lengths.

    In training mode forward_train runs (packed on CUDA, padded on CPU: RNNStack); in eval mode
    InferenceModel (self.inference()), the inference forward the exports and streaming share.
    The CMVN mean/std are buffers, so a checkpoint carries its own normalisation.
    """

    def __init__(self, cfg: ModelConfig, n_feats: int, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("cmvn_mean", torch.zeros(n_feats))
        self.register_buffer("cmvn_std", torch.ones(n_feats))
        self.frontend = ConvSubsampler(n_feats, cfg.conv_channels, cfg.subsample)
        self.rnn = RNNStack(self.frontend.out_dim, cfg)
        self.lookahead = Lookahead(self.rnn.out_dim, cfg.lookahead) if cfg.lookahead else None
        self.output = nn.Linear(self.rnn.out_dim, vocab_size)

    def set_cmvn(self, mean, std) -> None:
        self.cmvn_mean.copy_(torch.as_tensor(mean))
        self.cmvn_std.copy_(torch.as_tensor(std))

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.tensor([output_frames(int(n), self.cfg.subsample) for n in lengths])

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor):
        # CUDA eval keeps cuDNN's packed path: the time-major graph's per-direction weights are
        # not one contiguous cuDNN chunk (copied on every call); it computes the same function
        if not self.training and not feats.is_cuda:
            return self.inference()(feats, lengths)
        return self.forward_train(feats, lengths)

    def inference(self) -> InferenceModel:
        """InferenceModel on this model's weights (shared, not copied): made on first use and
        made again once a parameter or buffer was replaced (.to(), .half(), an assigning
        load_state_dict); updates in place (training, load_state_dict, set_cmvn) it shares."""
        tensors = [*self.parameters(), *self.buffers()]
        made = self.__dict__.get("_inference")  # not a registered submodule: no state_dict keys
        if (made is None or len(made[0]) != len(tensors)
                or any(a is not b for a, b in zip(made[0], tensors))):
            made = self.__dict__["_inference"] = (tensors, InferenceModel(self))
        return made[1]

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_inference", None)  # a copy or pickle makes its own on use
        return state

    def forward_train(self, feats: torch.Tensor, lengths: torch.Tensor):
        """The training forward (what forward runs in training mode; in eval mode it computes
        InferenceModel's function, which tests check)."""
        # zero padding after CMVN too: the first conv must not see -mean/std past the end
        x = (feats - self.cmvn_mean) / self.cmvn_std * time_mask(lengths, feats.shape[1])[:, :, None]
        x, lengths = self.frontend(x, lengths)
        x = self.rnn(x, lengths)
        if self.lookahead is not None:
            x = self.lookahead(x)
        logits = self.output(x)
        return logits.float().log_softmax(dim=-1), lengths


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

