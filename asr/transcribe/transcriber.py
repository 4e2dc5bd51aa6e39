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
the others are still transcribed: a file too short for one feature frame is one of those.
Word times never pass the end of the audio (the last output frame may reach past it).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr.data.audio import AudioError, resample
from asr.data.reader import AUDIO_SUFFIXES, AudioReader, audio_duration
from asr.bundle import EXPORTED
from asr.checkpoint import model_from_checkpoint
from asr.config import DecodeConfig
from asr.decoding.align import pause_segments, shift_words
from asr.decoding.decoders import get_decoder
from asr.data.features import FeatureExtractor
from asr.transcribe.subtitles import group_words, to_ctm, to_srt, to_tsv, to_vtt
from asr.transcribe.vad import SpeechDetector, VadSettings, frame_ranges
from asr.model import frame_seconds
from asr.utils import atomic_write_text, pick_device

log = logging.getLogger(__name__)

FORMATS = ("txt", "json", "srt", "vtt", "tsv", "ctm")
BATCH_SIZE = 16  # windows per network batch: on 2 CPU cores 15 % faster than 8 for both the
                 # PyTorch and the int8 ONNX network (make bench-ship); transcribe_many then
                 # holds up to 64 windows (123 MB of 30 s windows at 16 kHz)
SORT_BATCHES = 4  # transcribe_many sorts this many batches' worth of windows by length
# integer PCM as WAV stores it: dtype -> (zero, full scale) of float = (x - zero) / scale
PCM_SCALES = {np.dtype(np.int16): (0.0, 32768.0), np.dtype(np.int32): (0.0, 2147483648.0),
              np.dtype(np.uint8): (128.0, 128.0)}


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
    """One window of a stream: audio at the model rate, its start time, whether it is the last;
    next_start_s: the next window's start_s (None: start_s + chunk_s - overlap_s), so that
    neighbours agree exactly on where one's own part ends and the next one's begins."""

    audio: torch.Tensor
    start_s: float
    first: bool
    last: bool
    speech: list[tuple[float, float]] | None = None  # with VAD: speech regions (s, in the window)
    next_start_s: float | None = None


def float_samples(audio: np.ndarray, name: str) -> np.ndarray:
    """Samples as float32: floats as they are (full scale +-1), integer PCM scaled as WAV files
    are (int16, int32; uint8 centred on 128). AudioError for any other dtype, whose scale is
    unknown (int64), or that are not samples (complex, bool, object)."""
    if audio.dtype in PCM_SCALES:
        zero, scale = PCM_SCALES[audio.dtype]
        out = audio.astype(np.float32)  # one copy: an hour of int16 at 16 kHz is 230 MB here
        out -= zero
        out /= scale
        return out
    if audio.dtype.kind == "f":
        return audio.astype(np.float32, copy=False)
    raise AudioError(f"{name}: cannot use samples of dtype {audio.dtype}: give floats "
                     "(full scale +-1) or int16, int32 or uint8 PCM")


class ArrayReader:
    """An in-memory signal behind the same interface as asr.data.audio.AudioReader: a NumPy
    array or tensor of float samples (full scale +-1) or of int16, int32 or uint8 PCM (scaled
    as WAV does); any other dtype is refused (AudioError)."""

    def __init__(self, audio, sample_rate: int, name: str = "<array>"):
        if isinstance(audio, torch.Tensor):  # bfloat16 has no NumPy dtype: floats go as float32
            audio = (audio.float() if audio.is_floating_point() else audio).detach().cpu().numpy()
        audio = float_samples(np.asarray(audio), name)
        if audio.ndim == 2:  # (samples, channels) or (channels, samples): mix the shorter axis
            audio = audio.mean(axis=int(np.argmin(audio.shape)), dtype=np.float32)
        if audio.ndim != 1:
            raise AudioError(f"{name}: audio must be 1-D (samples) or 2-D (channels), got {audio.shape}")
        if not np.isfinite(audio).all():
            raise AudioError(f"{name}: audio contains NaN or infinite samples")
        self.audio, self.sample_rate, self.name, self.pos = audio, int(sample_rate), name, 0
        self.duration = len(audio) / self.sample_rate

    def read(self, n: int) -> np.ndarray:
        block = self.audio[self.pos:self.pos + n]
        self.pos += len(block)
        return block

    def __enter__(self):
        return self

    def __exit__(self, *_):
        return None


def reader_windows(reader, sample_rate: int, chunking: Chunking):
    """Yield the overlapping Windows of a reader (.sample_rate, .read(n) -> mono float32 samples,
    fewer than n only at the end), read sequentially: only one window is ever in memory.

    Each window is read with one sample more than it holds: without that sample the window
    ends the file and is marked last, whatever the file's length (one of exactly
    chunk_s + k * (chunk_s - overlap_s) would otherwise end in a window not marked last, and
    keep_own_words would drop the words of its final seconds)."""
    rate = reader.sample_rate
    win, step = int(round(chunking.chunk_s * rate)), int(round((chunking.chunk_s - chunking.overlap_s) * rate))
    buf, pos = reader.read(win + 1), 0
    if len(buf) == 0:
        raise AudioError(f"{reader.name}: audio has no samples")
    while True:
        last = len(buf) <= win
        yield Window(resample(torch.from_numpy(buf[:win]), rate, sample_rate), pos / rate, pos == 0, last,
                     next_start_s=None if last else (pos + step) / rate)
        if last:
            return
        buf, pos = np.concatenate([buf[step:], reader.read(step)]), pos + step


def stream_windows(path: str | Path, sample_rate: int, chunking: Chunking):
    """The Windows of an audio file in any format asr.data.audio reads. Raises AudioError naming
    the file if it is missing, unreadable or empty."""
    with AudioReader(path) as reader:
        yield from reader_windows(reader, sample_rate, chunking)


def keep_own_words(words: list[dict], window: Window, chunking: Chunking) -> list[dict]:
    """The words whose midpoint lies in this window's own part (see the module docstring)."""
    half = chunking.overlap_s / 2
    lo = -math.inf if window.first else window.start_s + half
    if window.last:
        hi = math.inf
    else:  # where the next window's own part begins, computed as that window computes it
        step_s = chunking.chunk_s - chunking.overlap_s
        hi = (window.next_start_s if window.next_start_s is not None else window.start_s + step_s) + half
    return [w for w in words if lo <= (w["start"] + w["end"]) / 2 < hi]


def acoustic_model(source, engine: str, device):
    """The network a Transcriber runs: the PyTorch model, or an exported form from the bundle
    (`asr export`): "onnx", "onnx-int8" (onnxruntime, CPU) or "torchscript"."""
    model, vocab, feat_cfg = model_from_checkpoint(source.checkpoint)
    if engine == "torch":
        return model.to(device), vocab, feat_cfg, model.cfg.subsample
    if engine not in EXPORTED:
        raise ValueError(f"unknown engine {engine!r} (known: torch, {', '.join(EXPORTED)})")
    from asr import export
    path = (source.folder or Path(".")) / EXPORTED[engine]
    if source.kind != "bundle" or not path.is_file():
        raise FileNotFoundError(f"{path}: no {engine} model; make one with "
                                f"`asr export BUNDLE --format {engine.split('-')[0]}"
                                f"{' --int8' if engine == 'onnx-int8' else ''}`")
    if engine == "torchscript":
        net, _ = export.load_torchscript(path)
        return net.to(device), vocab, feat_cfg, model.cfg.subsample
    return export.OnnxAcousticModel(path), vocab, feat_cfg, model.cfg.subsample


class Transcriber:
    """A loaded model + feature extractor + decoder: `transcribe(path)` returns a result dict.

    model: a bundle, run folder or checkpoint file (or an asr.bundle.ModelSource).
    device: "cpu", "cuda" or "auto". decoder: a built-in decoder name
    (asr.decoding.decoders.DECODERS); None = the model's best (beam + LM when it has an LM).
    decode_cfg: DecodeConfig for the beam decoders (default: the bundle's or run's tuned settings).
    chunking: how long files are cut. engine: "torch", or an exported form (see acoustic_model).
    batch_size: windows run through the network together (transcribe_many, which holds up to
    SORT_BATCHES x batch_size windows in memory).
    vad: voice-activity detection (asr.transcribe.vad): only the speech in each window is
    decoded, and a window without speech skips the network. None = off.
    `__call__(path)` returns just the text.
    """

    def __init__(self, model, device: str = "auto", decoder: str | None = None,
                 decode_cfg: DecodeConfig | None = None, chunking: Chunking | None = None,
                 engine: str = "torch", batch_size: int = BATCH_SIZE, vad: VadSettings | None = None):
        from asr.bundle import ModelSource, model_source
        self.source = model if isinstance(model, ModelSource) else model_source(model)
        self.device = pick_device(device) if engine in ("torch", "torchscript") else torch.device("cpu")
        self.model, self.vocab, feat_cfg, subsample = acoustic_model(self.source, engine, self.device)
        self.features = FeatureExtractor(feat_cfg)
        self.sample_rate = feat_cfg.sample_rate
        self.frame_s = frame_seconds(feat_cfg.hop_ms, subsample)
        decoder = decoder or self.source.best_decoder()
        self.decode_cfg = dataclasses.replace(decode_cfg or self.source.decode, decoder=decoder)
        self.decoder = get_decoder(decoder).decode  # a built-in Decoder: batches of outputs
        self.chunking = chunking or Chunking()
        self.batch_size = max(1, batch_size)
        self.vad = SpeechDetector(vad) if vad is not None else None
        # the centred first feature frame reflects n_fft / 2 samples: fewer cannot be featurised
        self.min_samples = self.features.transform.n_fft // 2 + 1

    def padded(self, audio: torch.Tensor) -> torch.Tensor:
        """A window of at least min_samples: a too-short one (the last few ms of a file, after
        the last full window) gets silence appended; its words' times are clamped to the end."""
        short = self.min_samples - len(audio)
        return torch.nn.functional.pad(audio, (0, short)) if short > 0 else audio

    @torch.no_grad()
    def network(self, audios: list[torch.Tensor]) -> list[torch.Tensor]:
        """Log-probabilities (T', V) of each window, the windows run as one padded batch."""
        feats = [self.features(self.padded(a)) for a in audios]
        lengths = torch.tensor([f.shape[0] for f in feats])
        batch = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True).to(self.device)
        log_probs, out_lengths = self.model(batch, lengths.to(self.device))
        return [log_probs[i, :int(out_lengths[i])].float().cpu() for i in range(len(feats))]

    def decode_window(self, window: Window, lp: torch.Tensor) -> list[dict]:
        """Decode one window's network output segment by segment (within its speech regions,
        with VAD); its words in the file's time line."""
        min_pause = int(round(self.chunking.min_pause_s / self.frame_s))
        spans = ([(0, len(lp))] if window.speech is None
                 else frame_ranges(window.speech, self.frame_s, len(lp)))
        words = []
        for start, end in spans:
            for a, b in pause_segments(lp[start:end], min_pause, self.vocab.blank):
                a, b = a + start, b + start
                hyp = self.decoder(lp[a:b].unsqueeze(0), torch.tensor([b - a]), self.vocab,
                                   self.decode_cfg, frame_s=self.frame_s)[0]
                words += shift_words(hyp["words"], window.start_s + a * self.frame_s)
        return keep_own_words(words, window, self.chunking)

    def window_words(self, window: Window) -> list[dict]:
        if window.speech == []:  # VAD heard no speech: nothing to run
            return []
        return self.decode_window(window, self.network([window.audio])[0])

    def windows(self, item, sample_rate: int | None = None):
        """The Windows of a file path, or of an array / tensor of samples at sample_rate
        (with VAD, each with its speech regions)."""
        if isinstance(item, (str, Path)):
            windows = stream_windows(item, self.sample_rate, self.chunking)
        elif sample_rate is None:
            raise ValueError("an array of samples needs its sample_rate")
        else:
            windows = reader_windows(ArrayReader(item, sample_rate), self.sample_rate, self.chunking)
        for window in windows:
            if window.first and window.last and len(window.audio) < self.min_samples:
                raise AudioError(self.too_short(item, len(window.audio)))
            if self.vad is not None:
                window.speech = self.vad.speech_regions(window.audio, self.sample_rate)
            yield window

    def too_short(self, item, samples: int) -> str:
        """The error message for an input shorter than min_samples (at the model rate)."""
        name = str(item) if isinstance(item, (str, Path)) else "<array>"
        need = math.ceil(self.min_samples * 1000 / self.sample_rate)
        return f"{name}: too short: {round(samples * 1000 / self.sample_rate)} ms, needs at least {need} ms"

    def transcribe(self, item, progress: bool = False, sample_rate: int | None = None) -> dict:
        """{"path", "duration", "text", "words": [{"word","start","end","conf"}]} of one file
        (or of an array of samples at sample_rate)."""
        from tqdm import tqdm
        total = audio_duration(item) if isinstance(item, (str, Path)) else None
        words: list[dict] = []
        end = 0.0
        with tqdm(total=round(total, 1) if total else None, unit="s", desc=Path(str(item)).name[:40],
                  disable=not progress or not total or total <= self.chunking.chunk_s,
                  leave=False, file=sys.stderr) as bar:
            for window in self.windows(item, sample_rate):
                words += self.window_words(window)
                end = window.start_s + len(window.audio) / self.sample_rate
                bar.update(round(end - bar.n, 1))
        return _result(item, end, words)

    def transcribe_many(self, items, sample_rate: int | None = None):
        """Yield (item, result dict or AudioError) for each file or array, in order; windows of
        several inputs share network batches of batch_size (one window per short file).

        Windows are gathered SORT_BATCHES batches at a time and sorted by length before they
        are cut into batches, so a batch holds windows of similar length and little of the
        network's time goes on padding."""
        states, pending = [], []

        def flush():
            pending.sort(key=lambda sw: len(sw[1].audio))
            for i in range(0, len(pending), self.batch_size):
                group = pending[i:i + self.batch_size]
                for (state, window), lp in zip(group, self.network([w.audio for _, w in group])):
                    state["words"] += self.decode_window(window, lp)
                    state["pending"] -= 1
            pending.clear()

        def finished():
            while states and states[0]["read"] and states[0]["pending"] == 0:
                st = states.pop(0)
                st["words"].sort(key=lambda w: w["start"])  # windows may finish out of order
                yield st["item"], st["error"] or _result(st["item"], st["end"], st["words"])

        for item in items:
            state = {"item": item, "words": [], "end": 0.0, "pending": 0, "read": False, "error": None}
            states.append(state)
            try:
                for window in self.windows(item, sample_rate):
                    state["end"] = max(state["end"], window.start_s + len(window.audio) / self.sample_rate)
                    if window.speech == []:  # VAD heard no speech: nothing to run
                        continue
                    pending.append((state, window))
                    state["pending"] += 1
                    if len(pending) >= self.batch_size * SORT_BATCHES:
                        flush()
            except AudioError as e:
                state["error"] = e
            state["read"] = True
            yield from finished()
        flush()
        yield from finished()

    def __call__(self, path: str | Path) -> str:
        return self.transcribe(path)["text"]


def clamp_words(words: list[dict], duration: float) -> list[dict]:
    """Words with no time past duration: the last output frame may end after the last sample
    (a file's length is no whole number of frames), and a word in it would end there."""
    return [{**w, "start": min(w["start"], duration), "end": min(w["end"], duration)} for w in words]


def _result(item, end: float, words: list[dict]) -> dict:
    path = str(item) if isinstance(item, (str, Path)) else "<array>"
    duration = round(end, 3)
    words = clamp_words(words, duration)
    return {"path": path, "duration": duration,
            "text": " ".join(w["word"] for w in words), "words": words}


def expand_inputs(paths: list[str]) -> list[Path]:
    """Files as given; a folder becomes its audio files (recursively, sorted): those with a
    suffix asr.data.reader reads (AUDIO_SUFFIXES, any case)."""
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


@dataclass(frozen=True)
class CueLimits:
    """How words become subtitle / tsv cues. max_chars: longest cue text; max_duration: longest
    cue (s); max_gap: a pause longer than this (s) starts a new cue."""

    max_chars: int = 42
    max_duration: float = 6.0
    max_gap: float = 1.0


def render(result: dict, fmt: str, limits: CueLimits = CueLimits()) -> str:
    """One result as txt, json, srt, vtt, tsv or ctm text."""
    if fmt == "txt":
        return result["text"] + "\n"
    if fmt == "json":
        return json.dumps(result, ensure_ascii=False, indent=1) + "\n"
    if fmt == "ctm":
        return to_ctm(result["words"], Path(result["path"]).stem or "audio")
    if fmt in ("srt", "vtt", "tsv"):
        cues = group_words(result["words"], **dataclasses.asdict(limits))
        return {"srt": to_srt, "vtt": to_vtt, "tsv": to_tsv}[fmt](cues)
    raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")


def output_names(files: list[Path]) -> dict[Path, str]:
    """A distinct output name per input: its stem, or its whole name where stems collide
    (a.wav, a.flac -> a.wav.txt, a.flac.txt; logged); -2, -3 … before the suffix where even
    names collide (a.wav in two folders -> a.wav, a-2.wav)."""
    files = list(dict.fromkeys(files))
    stems = Counter(f.stem for f in files)
    names: dict[Path, str] = {}
    used: set[str] = set()
    for f in files:
        name = f.stem if stems[f.stem] == 1 else f.name
        n = 1
        while name in used:
            n += 1
            name = f"{f.stem}-{n}{f.suffix}"
        names[f] = name
        used.add(name)
    renamed = [f"{f} -> {name}" for f, name in names.items() if name != f.stem]
    if renamed:
        log.warning("inputs share a stem, so their output names keep the extension: %s", ", ".join(renamed))
    return names


def make_output_folder(out_dir: Path) -> None:
    """out_dir made (with its parents) if missing; ValueError naming it if it cannot be."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        why = "is a file, not a folder" if out_dir.is_file() else (e.strerror or str(e))
        raise ValueError(f"output folder {out_dir}: {why}") from None


def write_outputs(result: dict, name: str, formats: list[str], out_dir: Path,
                  limits: CueLimits = CueLimits()) -> list[Path]:
    """Write one result in each format as out_dir/<name>.<fmt> (atomically); the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        paths.append(atomic_write_text(path, render(result, fmt, limits)))
    return paths


def emit_stdout(result: dict, formats: list[str], limits: CueLimits = CueLimits()) -> None:
    """Without --out: txt as 'path<TAB>text', json as one JSON line, the others as rendered."""
    for fmt in formats:
        if fmt == "txt":
            print(f"{result['path']}\t{result['text']}", flush=True)
        elif fmt == "json":
            print(json.dumps(result, ensure_ascii=False), flush=True)
        else:
            sys.stdout.write(render(result, fmt, limits))
            sys.stdout.flush()


def transcribe_files(model_path, files: list[str], device: str = "auto", decoder: str | None = None,
                     decode_cfg: DecodeConfig | None = None, chunking: Chunking | None = None,
                     formats: list[str] | None = None, out_dir: str | Path | None = None,
                     progress: bool = False, transcriber: Transcriber | None = None,
                     limits: CueLimits = CueLimits()) -> tuple[dict, dict]:
    """Transcribe files and folders; unreadable files are reported (log.error) and skipped.

    model_path, device, decoder, decode_cfg, chunking: as Transcriber (or pass transcriber).
    formats: output formats (default ["txt"]). out_dir: write <name>.<fmt> files there (names:
    output_names), a folder made if missing (ValueError, before any work, if it cannot be);
    None prints to stdout. progress: a progress bar over files. limits: subtitle/tsv cues.
    Returns ({path: result}, {path: error message}).
    """
    from tqdm import tqdm
    formats = formats or ["txt"]
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown output format(s) {bad} (known: {', '.join(FORMATS)})")
    if out_dir is not None:
        make_output_folder(Path(out_dir))
    paths = expand_inputs(files)
    t = transcriber or Transcriber(model_path, device, decoder, decode_cfg, chunking)
    names = output_names(paths)
    results, errors = {}, {}
    bar = tqdm(total=len(paths), unit="file", disable=not progress or len(paths) < 2, file=sys.stderr)
    for path, result in t.transcribe_many(paths):
        bar.update(1)
        if isinstance(result, AudioError):
            errors[str(path)] = str(result)
            log.error("%s", result)
            continue
        results[str(path)] = result
        if out_dir is None:
            emit_stdout(result, formats, limits)
        else:
            write_outputs(result, names[path], formats, Path(out_dir), limits)
    bar.close()
    return results, errors
