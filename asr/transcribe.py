"""Transcribe audio files with a trained model: any sample rate, channels, soundfile format."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from .audio import AudioError, load_audio
from .checkpoint import load_checkpoint, model_from_checkpoint
from .decode import greedy_decode
from .features import FeatureExtractor

log = logging.getLogger(__name__)


class Transcriber:
    """A loaded model + its feature extractor; `__call__(path)` returns the text."""

    def __init__(self, model_path: str | Path, device: str = "cpu"):
        self.model, self.vocab, feat_cfg = model_from_checkpoint(load_checkpoint(model_path))
        self.device = torch.device(device)
        self.model.to(self.device)
        self.features = FeatureExtractor(feat_cfg)
        self.sample_rate = feat_cfg.sample_rate

    @torch.no_grad()
    def __call__(self, path: str | Path) -> str:
        wav = load_audio(path, self.sample_rate)
        feats = self.features(wav).unsqueeze(0).to(self.device)
        log_probs, lengths = self.model(feats, torch.tensor([feats.shape[1]], device=self.device))
        return greedy_decode(log_probs.cpu(), lengths.cpu(), self.vocab)[0]


def transcribe_files(model_path: str | Path, files: list[str], device: str = "cpu") -> tuple[dict, dict]:
    """Transcribe each file, printing 'path<TAB>text'; unreadable files are reported and skipped.

    Returns ({path: text}, {path: error}).
    """
    transcriber = Transcriber(model_path, device)
    texts, errors = {}, {}
    for path in files:
        try:
            texts[path] = transcriber(path)
        except AudioError as e:
            errors[path] = str(e)
            log.error("%s", e)
            continue
        print(f"{path}\t{texts[path]}", flush=True)
    return texts, errors
