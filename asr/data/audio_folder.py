"""Recorded noise (e.g. MUSAN) and room impulse responses (e.g. RIRS_NOISES) from folders of
audio files, drawn at random for augmentation (augment.noise_dirs, augment.rir_dirs).

Draws come from the caller's ``torch.Generator`` only, as every effect's in
:mod:`asr.data.effects` does: :class:`AudioFolder` excerpts and responses depend on (seed, epoch,
utterance) alone, in any DataLoader worker.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Callable, Sequence

import soundfile as sf
import torch

from asr.data.audio import resample
from asr.data.effects import fit_length, randint, uniform

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


class AudioFolder:
    """The audio files under some folders (recorded noise, room impulse responses), drawn at random.

    dirs: folders searched recursively (symbolic links followed) for .wav, .flac and .ogg files
        (any case; hidden files skipped). Each folder must hold at least one, else ValueError
        naming it. The files are listed once, here, and sorted, so a seeded draw picks the same
        file in every run and DataLoader worker; the object holds paths only (cheap to pickle).
    sample_rate: the rate excerpts and responses are returned at (files are resampled).
    kind: what the files are, for messages ("noise", "rir").
    tries: a draw that meets an unreadable file draws again, up to this many files.

    Files are drawn uniformly. An unreadable file (undecodable, empty, non-finite, a silent
    response) is skipped with one warning naming it and recorded in ``skipped`` (path -> reason,
    per process); it is never an error. The draws use only the generator passed in, two per
    file tried (the file, the offset) whether it turns out readable or not, so results depend
    on (seed, epoch, utterance) only, as the other effects' do, in any worker.
    """

    def __init__(self, dirs: Sequence[str | os.PathLike], sample_rate: int, kind: str = "audio",
                 tries: int = 10):
        self.dirs = [str(d) for d in dirs]
        self.sample_rate, self.kind, self.tries = int(sample_rate), kind, max(1, int(tries))
        if not self.dirs:
            raise ValueError(f"{kind} folders: none given")
        found: set[str] = set()
        for d in self.dirs:
            if not os.path.isdir(d):
                raise ValueError(f"{kind} folder {d}: "
                                 + ("not a folder" if os.path.exists(d) else "no such folder"))
            files = [os.path.join(root, name)
                     for root, _, names in os.walk(d, followlinks=True) for name in names
                     if name.lower().endswith(AUDIO_SUFFIXES) and not name.startswith(".")]
            if not files:
                raise ValueError(f"{kind} folder {d}: no audio files "
                                 f"({', '.join(AUDIO_SUFFIXES)}) in it or below it")
            found.update(files)
        self.paths: list[str] = sorted(found)
        self.skipped: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"AudioFolder({self.kind}: {len(self.paths)} files in {', '.join(self.dirs)})"

    def _skip(self, path: str, reason: str) -> None:
        if path not in self.skipped:
            self.skipped[path] = reason
            log.warning("%s file %s skipped (%d so far): %s", self.kind, path,
                        len(self.skipped), reason)

    def _draw(self, generator: torch.Generator, read: Callable[[str, float], torch.Tensor]
              ) -> torch.Tensor | None:
        """read(path, u) of a file drawn uniformly, u uniform in [0, 1) (where to start);
        unreadable ones (read raises) are skipped and another drawn, up to self.tries; None if
        every try failed. Two draws a try, whatever read does."""
        for _ in range(self.tries):
            path = self.paths[randint(generator, 0, len(self.paths) - 1)]
            u = uniform(generator, 0.0, 1.0)
            if path in self.skipped:
                continue
            try:
                return read(path, u)
            except Exception as e:  # soundfile raises several types for corrupt input
                self._skip(path, f"{type(e).__name__}: {e}")
        return None

    def _mono(self, data, rate: int, first_channel: bool = False) -> torch.Tensor:
        """(frames, channels) samples at rate -> mono (mean, or first channel) at sample_rate."""
        if data.shape[0] == 0:
            raise ValueError("no samples")
        wav = torch.from_numpy(data[:, 0].copy() if first_channel else data.mean(axis=1))
        if not torch.isfinite(wav).all():
            raise ValueError("NaN or infinite samples")
        return resample(wav, rate, self.sample_rate).float()

    def excerpt(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n samples (mono, at sample_rate) of a random file from a random offset; a file shorter
        than n is looped from a random point. Reads only the part needed (plus a few samples) of
        a long file. Zeros when tries files in a row were unreadable (with a warning).
        Draws: two per file tried."""
        def at(u: float, positions: int) -> int:
            return min(int(u * positions), positions - 1)

        def read(path: str, u: float) -> torch.Tensor:
            with sf.SoundFile(path) as f:
                rate, frames = f.samplerate, f.frames
                margin = 0 if rate == self.sample_rate else 32  # resampling filter's edges
                need = math.ceil(n * rate / self.sample_rate) + 1 + 2 * margin  # native frames
                if frames >= need:
                    f.seek(at(u, frames - need + 1))
                    wav = self._mono(f.read(need, dtype="float32", always_2d=True), rate)
                    cut = round(margin * self.sample_rate / rate)
                    return fit_length(wav[cut:], n)
                wav = self._mono(f.read(dtype="float32", always_2d=True), rate)
            if wav.numel() >= n:
                start = at(u, wav.numel() - n + 1)
                return wav[start:start + n]
            start = at(u, wav.numel())
            return wav.repeat(n // wav.numel() + 2)[start:start + n]

        out = self._draw(generator, read)
        if out is None:
            log.warning("%s: %d unreadable files drawn in a row; silence used", self, self.tries)
            return torch.zeros(n)
        return out

    def rir(self, generator: torch.Generator) -> torch.Tensor | None:
        """A random room impulse response at sample_rate: the file's first channel, cut to start
        at its direct path (the largest absolute sample; no delay added, as Kaldi's
        wav-reverberate shifts its output), scaled to unit energy. None when tries files in a
        row were unreadable. Draws: two per file tried."""
        def read(path: str, u: float) -> torch.Tensor:
            data, rate = sf.read(path, dtype="float32", always_2d=True)
            h = self._mono(data, rate, first_channel=True).double()
            h = h[int(h.abs().argmax()):]
            energy = h.pow(2).sum().item()
            if energy <= 0:
                raise ValueError("silent impulse response")
            return (h / math.sqrt(energy)).float()

        out = self._draw(generator, read)
        if out is None:
            log.warning("%s: %d unreadable files drawn in a row; no response", self,
                        self.tries)
        return out
