"""Transcribe audio files of any length, rate, channel count and soundfile format.

Long recordings are streamed: the file is read in windows of ``chunk_s`` seconds that overlap
by ``overlap_s`` (only one window is ever in memory, so an hour-long file costs what 30 s do),
each window is mixed to mono, resampled, featurised, run through the model and decoded; its
words are shifted by the window's start time, and a word is kept from the window whose
*own* part (the window minus half the overlap at each inner edge) holds the word's midpoint,
so every word near a boundary comes from a window that heard it with context on both sides.
Inside a window, pauses of at least ``min_pause_s`` (frames the network calls blank) split it
into segments decoded one by one: the model (and the LM) learnt from single sentences, whose
ends no word separator marks, so two sentences decoded as one would run their words together.

Outputs (:data:`FORMATS`): ``txt`` (the text), ``json`` (path, duration, text, timed words with
confidences), ``srt`` and ``vtt`` subtitles. A file that cannot be read is reported by name and
the others are still transcribed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from asr.data.audio import AudioError
from asr.checkpoint import load_checkpoint, model_from_checkpoint
from asr.config import DecodeConfig
from asr.decoding.decoders import get_decoder
from asr.data.features import FeatureExtractor
from asr.transcribe.subtitles import group_words, to_srt, to_vtt
from asr.model import frame_seconds
from asr.utils import atomic_write_text, pick_device

log = logging.getLogger(__name__)

FORMATS = ("txt", "json", "srt", "vtt")
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au",
                  ".caf", ".w64", ".rf64", ".wv", ".sph", ".nist"}


@dataclass
class Chunking:
    """How a long file is cut. chunk_s: window length (s); overlap_s: overlap of neighbouring
    windows (s), half of it context on each side of a boundary. chunk_s must exceed overlap_s.
    min_pause_s: inside a window, a pause at least this long (frames the network calls blank)
    ends a segment; segments are decoded separately, as the model and the LM saw sentences in
    training (0 = decode the window whole)."""

    chunk_s: float = 30.0
    overlap_s: float = 4.0
    min_pause_s: float = 0.4

    def __post_init__(self):
        if self.chunk_s <= self.overlap_s or self.overlap_s < 0:
            raise ValueError(f"chunk_s ({self.chunk_s}) must exceed overlap_s ({self.overlap_s}) >= 0")


@dataclass
class Window:
    """One window of a stream: audio at the model rate, its start time, whether it is the last."""

    audio: torch.Tensor
    start_s: float
    first: bool
    last: bool


def _check_block(path, block: np.ndarray) -> np.ndarray:
    if not np.isfinite(block).all():
        raise AudioError(f"{path}: audio contains NaN or infinite samples")
    return block.mean(axis=1, dtype=np.float32)


def stream_windows(path: str | Path, sample_rate: int, chunking: Chunking):
    """Yield the overlapping Windows of an audio file, read sequentially (no seeking, no whole
    file in memory). Raises AudioError naming the file if it is missing, unreadable or empty."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        f = sf.SoundFile(str(path))
    except Exception as e:  # soundfile raises several types for undecodable input
        raise AudioError(f"{path}: cannot decode audio ({e})") from None
    with f:
        rate = f.samplerate
        win, step = int(round(chunking.chunk_s * rate)), int(round((chunking.chunk_s - chunking.overlap_s) * rate))
        tail, pos = np.zeros(0, np.float32), 0
        while True:
            need = win - len(tail)
            try:
                block = f.read(need, dtype="float32", always_2d=True)
            except Exception as e:
                raise AudioError(f"{path}: cannot decode audio at {pos / rate:.1f} s ({e})") from None
            new = _check_block(path, block)
            if len(new) == 0 and pos == 0:
                raise AudioError(f"{path}: audio has no samples")
            if len(new) == 0:
                return
            buf = np.concatenate([tail, new])
            last = len(new) < need
            wav = torch.from_numpy(buf)
            if rate != sample_rate:
                wav = AF.resample(wav, rate, sample_rate)
            yield Window(wav, pos / rate, pos == 0, last)
            if last:
                return
            tail, pos = buf[step:], pos + step


def audio_duration(path: str | Path) -> float | None:
    """Duration in seconds from the file header, or None when unknown/unreadable."""
    try:
        info = sf.info(str(path))
        return info.frames / info.samplerate if info.frames > 0 else None
    except Exception:
        return None


def pause_segments(log_probs: torch.Tensor, min_pause_frames: int, blank: int = 0) -> list[tuple[int, int]]:
    """Split (T, V) network output at pauses: [(start, end)] frame ranges of the speech between
    runs of at least min_pause_frames blank (argmax) frames, each cut in the pause's middle.
    min_pause_frames <= 0: one segment."""
    T = log_probs.shape[0]
    if min_pause_frames <= 0 or T == 0:
        return [(0, T)]
    is_blank = (log_probs.argmax(dim=-1) == blank).tolist()
    cuts, run = [], 0
    for t, b in enumerate(is_blank + [False]):
        if b:
            run += 1
            continue
        if run >= min_pause_frames and run < t:  # a pause, not the window's beginning
            cuts.append(t - run // 2)
        run = 0
    bounds = [0] + [c for c in cuts if 0 < c < T] + [T]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def keep_own_words(words: list[dict], window: Window, chunking: Chunking) -> list[dict]:
    """The words whose midpoint lies in this window's own part (see the module docstring)."""
    half = chunking.overlap_s / 2
    lo = -math.inf if window.first else window.start_s + half
    hi = math.inf if window.last else window.start_s + chunking.chunk_s - half
    return [w for w in words if lo <= (w["start"] + w["end"]) / 2 < hi]


def shift_words(words: list[dict], offset_s: float) -> list[dict]:
    """Words with offset_s added to their start/end (rounded to ms)."""
    return [{**w, "start": round(w["start"] + offset_s, 3), "end": round(w["end"] + offset_s, 3)}
            for w in words]


class Transcriber:
    """A loaded model + feature extractor + decoder: `transcribe(path)` returns a result dict.

    model_path: checkpoint file or run folder. device: "cpu", "cuda" or "auto".
    decoder: a built-in decoder name (asr.decoding.decoders.DECODERS). decode_cfg: DecodeConfig for the beam decoders (LM and
    lexicon paths resolved). chunking: how long files are cut.
    `__call__(path)` returns just the text.
    """

    def __init__(self, model_path: str | Path, device: str = "cpu", decoder: str = "greedy",
                 decode_cfg: DecodeConfig | None = None, chunking: Chunking | None = None):
        self.model, self.vocab, feat_cfg = model_from_checkpoint(load_checkpoint(model_path))
        self.device = pick_device(device)
        self.model.to(self.device)
        self.features = FeatureExtractor(feat_cfg)
        self.sample_rate = feat_cfg.sample_rate
        self.frame_s = frame_seconds(feat_cfg.hop_ms, self.model.cfg.subsample)
        self.decode_cfg = dataclasses.replace(decode_cfg or DecodeConfig(), decoder=decoder)
        self.decoder = get_decoder(decoder).decode  # a built-in Decoder: batches of outputs
        self.chunking = chunking or Chunking()

    @torch.no_grad()
    def window_words(self, window: Window) -> list[dict]:
        """Decode one window, segment by segment; its words in the file's time line."""
        feats = self.features(window.audio).unsqueeze(0).to(self.device)
        log_probs, lengths = self.model(feats, torch.tensor([feats.shape[1]], device=self.device))
        lp = log_probs[0, :int(lengths[0])].float().cpu()
        min_pause = int(round(self.chunking.min_pause_s / self.frame_s))
        words = []
        for a, b in pause_segments(lp, min_pause, self.vocab.blank):
            hyp = self.decoder(lp[a:b].unsqueeze(0), torch.tensor([b - a]), self.vocab,
                               self.decode_cfg, frame_s=self.frame_s)[0]
            words += shift_words(hyp["words"], window.start_s + a * self.frame_s)
        return keep_own_words(words, window, self.chunking)

    def transcribe(self, path: str | Path, progress: bool = False) -> dict:
        """{"path", "duration", "text", "words": [{"word","start","end","conf"}]} of one file."""
        from tqdm import tqdm
        total = audio_duration(path)
        words: list[dict] = []
        end = 0.0
        with tqdm(total=round(total, 1) if total else None, unit="s", desc=Path(path).name,
                  disable=not progress or not total or total <= self.chunking.chunk_s,
                  leave=False, file=sys.stderr) as bar:
            for window in stream_windows(path, self.sample_rate, self.chunking):
                words += self.window_words(window)
                end = window.start_s + len(window.audio) / self.sample_rate
                bar.update(round(end - bar.n, 1))
        return {"path": str(path), "duration": round(end, 3),
                "text": " ".join(w["word"] for w in words), "words": words}

    def __call__(self, path: str | Path) -> str:
        return self.transcribe(path)["text"]


def expand_inputs(paths: list[str]) -> list[Path]:
    """Files as given; a folder becomes its audio files (by suffix, recursively, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                log.warning("%s: folder holds no audio files (%s)", p, " ".join(sorted(AUDIO_SUFFIXES)))
            out += found
        else:
            out.append(p)
    return out


def render(result: dict, fmt: str) -> str:
    """One result as txt, json, srt or vtt text."""
    if fmt == "txt":
        return result["text"] + "\n"
    if fmt == "json":
        return json.dumps(result, ensure_ascii=False, indent=1) + "\n"
    if fmt in ("srt", "vtt"):
        cues = group_words(result["words"])
        return to_srt(cues) if fmt == "srt" else to_vtt(cues)
    raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")


def output_names(files: list[Path]) -> dict[Path, str]:
    """A distinct output stem per input (the file's stem; -2, -3 … when stems collide)."""
    names, used = {}, {}
    for f in files:
        n = used[f.stem] = used.get(f.stem, 0) + 1
        names[f] = f.stem if n == 1 else f"{f.stem}-{n}"
    return names


def write_outputs(result: dict, name: str, formats: list[str], out_dir: Path) -> list[Path]:
    """Write one result in each format as out_dir/<name>.<fmt> (atomically); the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        paths.append(atomic_write_text(path, render(result, fmt)))
    return paths


def emit_stdout(result: dict, formats: list[str]) -> None:
    """Without --out: txt as 'path<TAB>text', json as one JSON line, srt/vtt as the subtitles."""
    for fmt in formats:
        if fmt == "txt":
            print(f"{result['path']}\t{result['text']}", flush=True)
        elif fmt == "json":
            print(json.dumps(result, ensure_ascii=False), flush=True)
        else:
            sys.stdout.write(render(result, fmt))
            sys.stdout.flush()


def transcribe_files(model_path, files: list[str], device: str = "cpu", decoder: str = "greedy",
                     decode_cfg: DecodeConfig | None = None, chunking: Chunking | None = None,
                     formats: list[str] | None = None, out_dir: str | Path | None = None,
                     progress: bool = False, transcriber: Transcriber | None = None) -> tuple[dict, dict]:
    """Transcribe files and folders; unreadable files are reported (log.error) and skipped.

    model_path, device, decoder, decode_cfg, chunking: as Transcriber (or pass transcriber).
    formats: output formats (default ["txt"]). out_dir: write <stem>.<fmt> files there;
    None prints to stdout. progress: progress bars (files, and audio time in long files).
    Returns ({path: result}, {path: error message}).
    """
    from tqdm import tqdm
    formats = formats or ["txt"]
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown output format(s) {bad} (known: {', '.join(FORMATS)})")
    paths = expand_inputs(files)
    t = transcriber or Transcriber(model_path, device, decoder, decode_cfg, chunking)
    names = output_names(paths)
    results, errors = {}, {}
    for path in tqdm(paths, unit="file", disable=not progress or len(paths) < 2, file=sys.stderr):
        try:
            result = t.transcribe(path, progress=progress)
        except AudioError as e:
            errors[str(path)] = str(e)
            log.error("%s", e)
            continue
        results[str(path)] = result
        if out_dir is None:
            emit_stdout(result, formats)
        else:
            write_outputs(result, names[path], formats, Path(out_dir))
    return results, errors

