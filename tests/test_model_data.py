import numpy as np
import pytest
import torch

from asr.config import ModelConfig
from asr.data.dataset import BucketingBatchSampler, collate
from asr.model import output_frames
from asr.model import CTCModel


@pytest.mark.parametrize("rnn_type", ["lstm", "gru"])
@pytest.mark.parametrize("subsample", [2, 4])
def test_model_shapes_and_lengths(rnn_type, subsample):
    cfg = ModelConfig(rnn_type=rnn_type, subsample=subsample, rnn_layers=2, rnn_hidden=32, conv_channels=8)
    model = CTCModel(cfg, 80, 29).eval()
    lengths = torch.tensor([101, 57, 10])
    feats = torch.randn(3, 101, 80)
    log_probs, out_lens = model(feats, lengths)
    assert log_probs.shape == (3, output_frames(101, subsample), 29)
    assert out_lens.tolist() == [output_frames(n, subsample) for n in lengths.tolist()]
    assert out_lens.tolist() == model.output_lengths(lengths).tolist()
    assert log_probs.dtype == torch.float32
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(3, log_probs.shape[1]), atol=1e-4)


def test_padding_does_not_change_outputs():
    """Packed sequences + masked conv: an utterance's output is the same alone or padded in a batch."""
    cfg = ModelConfig(rnn_layers=2, rnn_hidden=32, conv_channels=8)
    model = CTCModel(cfg, 80, 29).eval()
    short = torch.randn(1, 40, 80)
    alone, n = model(short, torch.tensor([40]))
    batch = torch.zeros(2, 90, 80)
    batch[0, :40] = short[0]
    batch[1] = torch.randn(90, 80)
    together, _ = model(batch, torch.tensor([40, 90]))
    assert torch.allclose(alone[0, :n[0]], together[0, :n[0]], atol=1e-5)


def test_batchnorm_statistics_ignore_padding():
    """In training, the front-end's BatchNorm sees only valid frames: a batch with (zero)
    padding normalises and updates its running statistics as the valid frames alone would,
    and its output is zero at the padded frames."""
    from asr.model import MaskedBatchNorm2d
    torch.manual_seed(0)
    x = torch.randn(2, 4, 10, 6) * 3 + 1
    x[1, :, 6:] = 0.0  # padding: ConvSubsampler zeroes it before the norm (zero_past_lengths)
    mask = (torch.arange(10)[None, :] < torch.tensor([10, 6])[:, None]).float()[:, None, :, None]
    masked, plain = MaskedBatchNorm2d(4).train(), torch.nn.BatchNorm2d(4).train()
    out = masked(x, mask)
    valid = torch.cat([x[0], x[1, :, :6]], dim=1)[None]  # the 16 valid frames as one utterance
    ref = plain(valid)
    assert torch.allclose(torch.cat([out[0], out[1, :, :6]], dim=1)[None], ref, atol=1e-5)
    assert torch.allclose(masked.running_mean, plain.running_mean, atol=1e-5)
    assert torch.allclose(masked.running_var, plain.running_var, atol=1e-4)
    assert not out[1, :, 6:].any()
    masked.eval(), plain.eval()
    assert torch.allclose(masked(valid), plain(valid), atol=1e-5)


def test_the_front_end_zeroes_padding_and_trains_as_without_it():
    """ConvSubsampler in training: padded frames are zero after each conv block, and an
    utterance's gradients do not depend on how much padding follows it (batch statistics
    aside: one utterance, so the statistics are its own)."""
    from asr.model import ConvSubsampler
    torch.manual_seed(0)
    front = ConvSubsampler(80, 8, 4).train()
    feats = torch.randn(1, 37, 80)
    grads = []
    for pad in (0, 1, 2, 15):
        front.zero_grad()
        x = torch.cat([feats, torch.zeros(1, pad, 80)], 1)
        y, n = front(x, torch.tensor([37]))
        assert not y[0, n[0]:].any()
        (y[0, :n[0]] ** 2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in front.parameters()]))
    assert all(torch.allclose(g, grads[0], rtol=1e-4, atol=1e-4) for g in grads[1:])


def test_bad_model_options():
    with pytest.raises(ValueError, match="rnn_type"):
        CTCModel(ModelConfig(rnn_type="transformer"), 80, 29)
    with pytest.raises(ValueError, match="subsample"):
        CTCModel(ModelConfig(subsample=3), 80, 29)


def test_bucketing_sampler_limits_padding_and_covers_everything():
    rng = np.random.default_rng(0)
    lengths = rng.integers(50, 1000, size=500).tolist()
    sampler = BucketingBatchSampler(lengths, batch_frames=4000, max_batch_utts=16, seed=3)
    batches = sampler.epoch_batches()
    assert sorted(i for b in batches for i in b) == list(range(500))
    for b in batches:
        assert max(lengths[i] for i in b) * len(b) <= 4000 or len(b) == 1
        assert len(b) <= 16
    # SortaGrad: epoch 0 goes shortest first; later epochs are shuffled, reproducibly.
    firsts = [max(lengths[i] for i in b) for b in batches]
    assert firsts == sorted(firsts)
    sampler.set_epoch(1)
    e1 = sampler.epoch_batches()
    assert e1 != batches and e1 == sampler.epoch_batches()
    sampler.set_epoch(1, start_batch=5)
    assert list(iter(sampler)) == e1[5:]


def test_sampler_gives_ranks_equal_disjoint_work():
    lengths = list(range(10, 1010, 7))
    parts = [BucketingBatchSampler(lengths, 2000, rank=r, world_size=3, sortagrad=False)
             for r in range(3)]
    for p in parts:
        p.set_epoch(2)
    got = [p.epoch_batches() for p in parts]
    assert len({len(g) for g in got}) == 1
    seen = [i for g in got for b in g for i in b]
    assert len(seen) == len(set(seen))


def test_collate_pads():
    items = [(torch.ones(5, 4), torch.tensor([1, 2]), "a"), (torch.ones(3, 4), torch.tensor([3]), "b")]
    feats, feat_lens, targets, target_lens, ids = collate(items)
    assert feats.shape == (2, 5, 4) and feats[1, 3:].abs().sum() == 0
    assert feat_lens.tolist() == [5, 3] and target_lens.tolist() == [2, 1]
    assert targets.tolist() == [[1, 2], [3, 0]] and ids == ["a", "b"]


@pytest.mark.parametrize("options", [
    {"bidirectional": False, "lookahead": 3},          # streaming: unidirectional + lookahead conv
    {"projection": 16},                                 # LSTMP
    {"norm_type": "batch"},                             # DeepSpeech2 sequence-wise BatchNorm
    {"rnn_type": "gru", "bidirectional": False},
])
def test_model_options_shapes_and_padding_invariance(options):
    cfg = ModelConfig(rnn_layers=2, rnn_hidden=32, conv_channels=8, **options)
    model = CTCModel(cfg, 80, 29).eval()
    short = torch.randn(1, 40, 80)
    alone, n = model(short, torch.tensor([40]))
    batch = torch.zeros(2, 90, 80)
    batch[0, :40] = short[0]
    batch[1] = torch.randn(90, 80)
    together, lens = model(batch, torch.tensor([40, 90]))
    assert together.shape == (2, output_frames(90, 4), 29)
    assert torch.allclose(alone[0, :n[0]], together[0, :n[0]], atol=1e-5)


def test_unidirectional_model_is_causal_up_to_its_lookahead():
    """Changing frames after t changes outputs only up to `lookahead` subsampled frames back."""
    cfg = ModelConfig(rnn_layers=2, rnn_hidden=32, conv_channels=8, bidirectional=False, lookahead=2,
                      layer_norm=False)
    model = CTCModel(cfg, 80, 29).eval()
    x = torch.randn(1, 200, 80)
    y = x.clone()
    y[0, 120:] = torch.randn(80, 80)  # change the future from input frame 120 (output frame 30)
    a, _ = model(x, torch.tensor([200]))
    b, _ = model(y, torch.tensor([200]))
    changed = (a - b).abs().amax(-1)[0] > 1e-6
    first = int(changed.nonzero()[0])
    assert 30 - 2 - 2 <= first < 30  # lookahead 2 + the conv front-end's receptive field


def test_projection_needs_lstm():
    with pytest.raises(ValueError, match="projection"):
        CTCModel(ModelConfig(rnn_type="gru", projection=8), 80, 29)


@pytest.mark.parametrize("norm_type, bidirectional", [("layer", True), ("batch", True), ("none", False)])
def test_padded_and_packed_rnn_paths_agree_with_gradients(norm_type, bidirectional):
    """RNNStack's CPU way (the padded batch, reverse direction reversed within lengths) is the
    packed way's function: outputs and every parameter's gradient, pads included."""
    from asr.config import ModelConfig
    from asr.model import RNNStack
    torch.manual_seed(0)
    stack = RNNStack(12, ModelConfig(rnn_layers=2, rnn_hidden=16, norm_type=norm_type,
                                     dropout=0.0, bidirectional=bidirectional)).train()
    lengths = torch.tensor([20, 13, 20, 4])
    x = torch.randn(4, 20, 12) * (torch.arange(20)[None, :] < lengths[:, None])[:, :, None]
    outs, grads = [], []
    for packed in (True, False):
        stack.packed = packed
        y = stack(x, lengths)
        outs.append(y)
        grads.append(torch.autograd.grad((y * torch.linspace(-1, 1, 20)[None, :, None]).pow(2).sum(),
                                         list(stack.parameters())))
    assert torch.allclose(outs[0], outs[1], atol=1e-5)
    assert (outs[1][1, 13:] == 0).all() and (outs[1][3, 4:] == 0).all()
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-3)
    fresh = RNNStack(12, ModelConfig(rnn_layers=2, rnn_hidden=16, norm_type=norm_type,
                                     bidirectional=bidirectional))
    assert stack.state_dict().keys() == fresh.state_dict().keys()  # the views add no weights
