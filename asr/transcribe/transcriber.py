"""Transcribe audio files of any length, rate, channel count and soundfile format.

Long recordings are streamed: the file is read in windows of ``chunk_s`` seconds that overlap
by ``overlap_s`` (only one window is ever in memory, so an hour-long file costs what 30 s do),
each window is mixed to mono, resampled, featurised, run through the model and decoded; its
words are shifted by the window's start time, and a word is kept from the window whose
*own* part (the window minus half the overlap at each inner edge) holds the word's midpoint,
so every word near a boundary comes from a window that heard it with context on both sides
(the windows: asr.transcribe.windows).
Inside a window, pauses of at least ``min_pause_s`` (frames the network calls blank) split it
into segments decoded one by one: the model (and the LM) learnt from single sentences, whose
ends no word separator marks, so two sentences decoded as one would run their words together.

Outputs (:data:`FORMATS`, asr.transcribe.outputs): ``txt`` (the text), ``json`` (path,
duration, text, timed words with confidences), ``srt`` and ``vtt`` subtitles, ``tsv``, ``ctm``.
A file that cannot be read is reported by name and the others are still transcribed: a file
too short for one feature frame is one of those. Word times never pass the end of the audio
(the last output frame may reach past it). Nothing here prints: results are returned (or
written to files, or handed to a callback); `asr transcribe` prints them.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
from pathlib import Path
from typing import Callable

import torch

from asr.config import DecodeConfig
from asr.data.audio import AudioError
from asr.data.features import FeatureExtractor
from asr.data.reader import AUDIO_SUFFIXES, audio_duration  # noqa: F401 (AUDIO_SUFFIXES: public here too)
from asr.decoding.align import pause_segments, shift_words
from asr.decoding.decoders import get_decoder
from asr.model import frame_seconds
from asr.transcribe.outputs import (FORMATS, CueLimits, check_formats, expand_inputs,  # noqa: F401
                                    make_output_folder, output_names, render, stdout_text,
                                    write_outputs)
from asr.transcribe.vad import SpeechDetector, VadSettings, frame_ranges
from asr.transcribe.windows import (PCM_SCALES, ArrayReader, Chunking, Window,  # noqa: F401
                                    float_samples, keep_own_words, reader_windows, stream_windows)
from asr.utils import pick_device

log = logging.getLogger(__name__)

BATCH_SIZE = 16  # windows per network batch: on 2 CPU cores 15 % faster than 8 for both the
                 # PyTorch and the int8 ONNX network (make bench-ship); transcribe_many then
                 # holds up to 64 windows (123 MB of 30 s windows at 16 kHz)
SORT_BATCHES = 4  # transcribe_many sorts this many batches' worth of windows by length


class Transcriber:
    """A loaded model + feature extractor + decoder: `transcribe(path)` returns a result dict.

    model: a bundle, run folder or checkpoint file, or an asr.source.ModelSource (whose
    settings, from ModelSource.with_settings, are used as they are).
    device: "cpu", "cuda" or "auto". decoder: the name of a decoder of the registry
    (asr.decoding.decoders.DECODERS: built in, or added with register_decoder); None = the
    source's decode.decoder for a ModelSource, else the model's best (beam + LM when it has an LM).
    decode_cfg: DecodeConfig for the beam decoders (default: the source's settings).
    chunking: how long files are cut. engine: "torch", or an exported form
    (ModelSource.network).
    batch_size: windows run through the network together (transcribe_many, which holds up to
    SORT_BATCHES x batch_size windows in memory).
    vad: voice-activity detection (asr.transcribe.vad): only the speech in each window is
    decoded, and a window without speech skips the network. None = off.
    `__call__(path)` returns just the text.
    """

    def __init__(self, model, device: str = "auto", decoder: str | None = None,
                 decode_cfg: DecodeConfig | None = None, chunking: Chunking | None = None,
                 engine: str = "torch", batch_size: int = BATCH_SIZE, vad: VadSettings | None = None):
        from asr.source import ModelSource, model_source
        given = isinstance(model, ModelSource)
        source = model if given else model_source(model)
        if decode_cfg is not None:
            source = dataclasses.replace(source, decode=decode_cfg)
        self.source = source.with_settings(decoder) if decoder or not given else source
        self.device = pick_device(device) if engine in ("torch", "torchscript") else torch.device("cpu")
        self.model, self.vocab, feat_cfg, subsample = self.source.network(engine, self.device)
        self.features = FeatureExtractor(feat_cfg)
        self.sample_rate = feat_cfg.sample_rate
        self.frame_s = frame_seconds(feat_cfg.hop_ms, subsample)
        self.decode_cfg = self.source.decode
        self.decoder = get_decoder(self.decode_cfg.decoder).decode  # Decoder.decode: a batch of network outputs
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


def transcribe_files(model_path, files: list[str], device: str = "auto", decoder: str | None = None,
                     decode_cfg: DecodeConfig | None = None, chunking: Chunking | None = None,
                     formats: list[str] | None = None, out_dir: str | Path | None = None,
                     progress: bool = False, transcriber: Transcriber | None = None,
                     limits: CueLimits = CueLimits(),
                     on_result: Callable[[dict], None] | None = None) -> tuple[dict, dict]:
    """Transcribe files and folders; unreadable files are reported (log.error) and skipped.

    model_path, device, decoder, decode_cfg, chunking: as Transcriber (or pass transcriber).
    formats: output formats (default ["txt"]). out_dir: write <name>.<fmt> files there (names:
    output_names), a folder made if missing (ValueError, before any work, if it cannot be);
    None writes no files. on_result(result) is called with each result as it is ready, in
    input order (`asr transcribe` prints it there: outputs.stdout_text). progress: a progress
    bar over files on stderr (off by default). limits: subtitle/tsv cues.
    Returns ({path: result}, {path: error message}).
    """
    from tqdm import tqdm
    formats = formats or ["txt"]
    check_formats(formats)
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
        if out_dir is not None:
            write_outputs(result, names[path], formats, Path(out_dir), limits)
        if on_result is not None:
            on_result(result)
    bar.close()
    return results, errors
