"""Acoustic features with torchaudio: log-mel filterbanks (default) or log linear spectrograms."""

from __future__ import annotations

import torch
import torchaudio

from asr.config import FeatureConfig

LOG_FLOOR = 1e-10


class FeatureExtractor(torch.nn.Module):
    """Waveform (samples,) float32 at cfg.sample_rate -> features (frames, dim) float32.

    Power spectrum over a Hann window of win_ms every hop_ms (centred frames), mel-warped with
    HTK-scale triangular filters for kind="fbank", then the natural log floored at 1e-10.
    Frames = 1 + samples // hop.
    """

    def __init__(self, cfg: FeatureConfig):
        super().__init__()
        self.cfg = cfg
        win = int(round(cfg.sample_rate * cfg.win_ms / 1000))
        hop = int(round(cfg.sample_rate * cfg.hop_ms / 1000))
        n_fft = 1 << (win - 1).bit_length()  # next power of two: 400 samples -> 512
        if cfg.kind == "fbank":
            self.transform = torchaudio.transforms.MelSpectrogram(
                sample_rate=cfg.sample_rate, n_fft=n_fft, win_length=win, hop_length=hop,
                n_mels=cfg.n_mels, power=2.0, mel_scale="htk")
        else:
            self.transform = torchaudio.transforms.Spectrogram(
                n_fft=n_fft, win_length=win, hop_length=hop, power=2.0)
        self.hop = hop
        self.dim = cfg.n_mels if cfg.kind == "fbank" else n_fft // 2 + 1

    @torch.no_grad()
    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        spec = self.transform(wav.float())  # (dim, frames)
        return spec.clamp_min(LOG_FLOOR).log().transpose(-1, -2).contiguous()
