"""Chunk-by-chunk streaming recognition with a unidirectional model (model.bidirectional=false).

A :class:`StreamingRecognizer` is fed audio as it arrives (``accept``) and returns partial
greedy text; ``finish`` flushes the end of the utterance and returns the final text with timed
words, then the recognizer is ready for the next utterance. The network is the model's own
inference forward (asr.inference.InferenceModel, as offline recognition and the exports run
it), stage by stage; every stage keeps only the state it needs, so the streamed network output
equals the offline output for the whole signal (to float rounding), and the final result
equals offline greedy decoding:

* features: samples are buffered and only complete frames are computed; torchaudio's centred
  frames are reproduced (reflect padding at both ends, the end padding applied by ``finish``);
* conv front-end: each time-strided conv keeps its left context (the zero padding at the start,
  the frames under its kernel) and waits for the frame on its right;
* RNNs: the (h, c) / h state of every layer is carried from chunk to chunk;
* lookahead conv: holds back its last ``lookahead`` input frames until the future arrives;
* greedy decoding: argmax per frame, repeats collapsed across chunk boundaries.

Latency (:attr:`StreamingRecognizer.latency_ms`) is the chunk plus the right context the
network waits for; :func:`stream_file` also measures the real-time factor.

    rec = StreamingRecognizer(model, vocab, feat_cfg, chunk_ms=200)
    for block in blocks:
        print(rec.accept(block)["text"])
    print(rec.finish()["words"])
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from torch.nn import functional as F

from asr.config import FeatureConfig
from asr.data.audio import load_audio
from asr.data.features import LOG_FLOOR, FeatureExtractor
from asr.decoding.align import path_words, pause_segments, shift_words
from asr.decoding.lm import is_phone_lexicon
from asr.inference import time_major
from asr.model import CTCModel, frame_seconds
from asr.transcribe.transcriber import clamp_words


class _Features:
    """Incremental FeatureExtractor: the same frames as the offline extractor on the whole
    signal. Frame t is the n_fft samples of the reflect-padded signal from t * hop, so it is
    computed once those samples are in; the buffer keeps the unconsumed samples, and at least
    pad + 1 of them, which the end's reflect padding needs."""

    def __init__(self, extractor: FeatureExtractor):
        t = extractor.transform
        self.spec = t.spectrogram if hasattr(t, "mel_scale") else t
        self.mel = getattr(t, "mel_scale", None)
        self.n_fft, self.hop = self.spec.n_fft, self.spec.hop_length
        self.pad = self.n_fft // 2  # torchaudio's centre padding
        self.dim = extractor.dim
        self.reset()

    def reset(self) -> None:
        self.buf = torch.zeros(0)  # padded-signal samples from self.offset (raw before start)
        self.offset = 0
        self.started = False  # reflect start padding applied (needs pad + 1 samples)
        self.next = 0  # next frame to compute

    def __call__(self, samples: torch.Tensor, final: bool) -> torch.Tensor | None:
        self.buf = torch.cat([self.buf, samples])
        if not self.started:
            if len(self.buf) <= self.pad:
                return None  # too short for reflect padding yet (and offline refuses it)
            self.buf = torch.cat([self.buf[1:self.pad + 1].flip(0), self.buf])
            self.started = True
        if final:
            self.buf = torch.cat([self.buf, self.buf[-self.pad - 1:-1].flip(0)])
        end = self.offset + len(self.buf)
        last = (end - self.n_fft) // self.hop
        if last < self.next:
            return None
        first = self.next * self.hop - self.offset
        seg = self.buf[first:first + (last - self.next) * self.hop + self.n_fft]
        s = self.spec
        spec = AF.spectrogram(seg, 0, s.window, s.n_fft, s.hop_length, s.win_length, s.power,
                              s.normalized, center=False, onesided=s.onesided)
        if self.mel is not None:
            spec = self.mel(spec)
        self.next = last + 1
        keep = max(self.offset, min(self.next * self.hop, end - self.pad - 1))
        self.buf, self.offset = self.buf[keep - self.offset:], keep
        return spec.clamp_min(LOG_FLOOR).log().transpose(0, 1)  # (frames, dim)


class _TimeConv:
    """One front-end block (asr.inference.ConvBlock: conv + BatchNorm + ReLU), streamed along
    time: kernel 3 and padding 1 in time, so output j needs input frames j*s - 1 .. j*s + 1;
    the buffer starts with the zero padding frame and finish appends the one at the end."""

    def __init__(self, block):
        self.block, self.stride = block, block.conv.stride[0]

    def reset(self) -> None:
        self.buf = None  # (1, C, frames, F) from padded frame self.offset
        self.offset = self.next = 0

    def __call__(self, x: torch.Tensor | None, final: bool) -> torch.Tensor | None:
        if x is not None:
            self.buf = torch.cat([torch.zeros_like(x[:, :, :1]), x], 2) if self.buf is None \
                else torch.cat([self.buf, x], 2)
        if self.buf is None:
            return None
        if final:
            self.buf = torch.cat([self.buf, torch.zeros_like(self.buf[:, :, :1])], 2)
        s, end = self.stride, self.offset + self.buf.shape[2]
        last = (end - 3) // s
        if last < self.next:
            return None
        seg = self.buf[:, :, self.next * s - self.offset:last * s + 3 - self.offset]
        self.next = last + 1
        self.buf, self.offset = self.buf[:, :, self.next * s - self.offset:], self.next * s
        return self.block.step(seg)


class _RNNs:
    """The RNN layers (asr.inference.RNNLayer, time-major) with their hidden state carried
    across chunks (per layer: (h, c) for an LSTM, h for a GRU)."""

    def __init__(self, layers):
        self.layers = layers

    def reset(self) -> None:
        self.states = [None] * len(self.layers)

    def __call__(self, x: torch.Tensor | None, final: bool) -> torch.Tensor | None:
        if x is None:
            return None
        for i, layer in enumerate(self.layers):
            x, self.states[i] = layer.step(x, self.states[i])
        return x


class _Lookahead:
    """The lookahead conv, streamed: output t needs inputs t .. t + context, so the last
    `context` inputs wait for the next chunk (finish pads them with zeros, as offline)."""

    def __init__(self, lookahead):
        self.lookahead, self.context = lookahead, lookahead.context

    def reset(self) -> None:
        self.buf = None  # (1, D, frames)

    def __call__(self, x: torch.Tensor | None, final: bool) -> torch.Tensor | None:
        if x is not None:
            x = x.permute(1, 2, 0)  # (T, 1, D) -> (1, D, T)
            self.buf = x if self.buf is None else torch.cat([self.buf, x], 2)
        if self.buf is None:
            return None
        if final:
            self.buf = F.pad(self.buf, (0, self.context))
        if self.buf.shape[2] <= self.context:
            return None
        y = self.lookahead.mix(self.buf).permute(2, 0, 1)
        self.buf = self.buf[:, :, self.buf.shape[2] - self.context:]
        return y


class StreamingRecognizer:
    """Streaming greedy recognition with a unidirectional CTCModel.

    model: the CTCModel (put in eval mode; any device), vocab: its vocabulary, feat_cfg: the
    features it was trained on, chunk_ms: audio gathered before each network step (smaller:
    lower latency, more steps). A bidirectional model is refused (ValueError): its backward RNN
    needs the end of the utterance before it can emit the first frame.
    min_pause_s: a run of blank frames at least this long ends a word, as in `asr transcribe`
    (which decodes the segments between such pauses one by one), so the final text equals the
    offline transcription's; 0 = no pause splitting.
    """

    def __init__(self, model: CTCModel, vocab, feat_cfg: FeatureConfig, chunk_ms: float = 200,
                 min_pause_s: float = 0.4):
        if model.cfg.bidirectional:
            raise ValueError("streaming needs a unidirectional model (model.bidirectional=false): "
                             "a bidirectional RNN needs the whole utterance")
        if chunk_ms <= 0:
            raise ValueError(f"chunk_ms must be positive, not {chunk_ms}")
        if is_phone_lexicon(vocab):
            raise ValueError("streaming decodes greedily, and a phone_lexicon model's best path "
                             "is phones, not words: stream a character or subword model")
        self.model = model.eval()
        self.net = model.inference()  # the inference forward, run stage by stage
        self.vocab = vocab
        self.sample_rate = feat_cfg.sample_rate
        self.chunk_ms = chunk_ms
        self.device = next(model.parameters()).device
        self.frame_s = frame_seconds(feat_cfg.hop_ms, model.cfg.subsample)
        self.min_pause_frames = int(round(min_pause_s / self.frame_s))
        self.features = _Features(FeatureExtractor(feat_cfg))
        self.convs = [_TimeConv(block) for block in self.net.frontend]
        self.stages = [_RNNs(self.net.layers)]  # time-major from here
        if self.net.has_lookahead:
            self.stages.append(_Lookahead(self.net.lookahead))
        self.reset()

    def reset(self) -> None:
        """Forget the current utterance (finish does this itself)."""
        self.features.reset()
        for stage in self.convs + self.stages:
            stage.reset()
        self.pending: list[torch.Tensor] = []
        self.pending_samples = self.samples = 0
        self.log_probs: list[torch.Tensor] = []  # (frames, V) per network step
        self.ids: list[int] = []
        self.prev = self.vocab.blank
        self.blank_run = 0  # blank frames since the last label

    @property
    def chunk_samples(self) -> int:
        return max(1, int(round(self.sample_rate * self.chunk_ms / 1000)))

    @property
    def context_ms(self) -> float:
        """Audio past an output frame the network waits for: the lookahead frames, the conv
        front-end's right context (2 feature frames with subsample 2, none with 4) and half an
        FFT window of samples for the last feature frame."""
        hop_ms = self.frame_s * 1000 / self.model.cfg.subsample
        conv_frames = 2 if self.model.cfg.subsample == 2 else 0
        return (self.model.cfg.lookahead * self.frame_s * 1000 + conv_frames * hop_ms
                + self.features.pad / self.sample_rate * 1000)

    @property
    def latency_ms(self) -> float:
        """Algorithmic latency: the chunk plus context_ms (compute time not included; the RTF
        of stream_file says whether the machine keeps up)."""
        return self.chunk_ms + self.context_ms

    @torch.no_grad()
    def step(self, samples, final: bool = False) -> torch.Tensor:
        """Run the network on new samples (final: also flush the end of the utterance) and
        return the new output frames' log-probabilities (frames, V) on the CPU, without
        decoding them: concatenated over an utterance, they equal the offline model's."""
        x = self.features(_as_tensor(samples), final)
        if x is not None:
            x = self.net.normalise(x.to(self.device))[None, None]  # (1, 1, T, F)
        for conv in self.convs:
            x = conv(x, final)
        if x is not None:
            x = time_major(x)  # (1, C, T, F) -> (T, 1, C * F)
        for stage in self.stages:
            x = stage(x, final)
        if x is None:
            return torch.zeros(0, len(self.vocab))
        return self.net.log_probs(x[:, 0]).cpu()

    def _decode(self, lp: torch.Tensor) -> None:
        self.log_probs.append(lp)
        space = self.vocab.index.get(" ")
        for tok in lp.argmax(dim=-1).tolist():
            if tok == self.vocab.blank:
                self.blank_run += 1
            elif tok != self.prev:
                if (self.min_pause_frames and self.blank_run >= self.min_pause_frames
                        and self.ids and space is not None):
                    self.ids.append(space)  # a pause ends a word, as in finish()
                self.ids.append(tok)
                self.blank_run = 0
            self.prev = tok

    def _text(self) -> str:
        return " ".join(self.vocab.decode(self.ids).split())

    def accept(self, samples) -> dict:
        """Feed samples (float32 mono at feat_cfg.sample_rate, numpy or torch); the network
        runs once at least chunk_ms of audio is pending. Returns {"text", "final": False}."""
        samples = _as_tensor(samples)
        self.pending.append(samples)
        self.pending_samples += len(samples)
        self.samples += len(samples)
        if self.pending_samples >= self.chunk_samples:
            self._decode(self.step(torch.cat(self.pending)))
            self.pending, self.pending_samples = [], 0
        return {"text": self._text(), "final": False}

    def finish(self) -> dict:
        """End the utterance: {"text", "words": [{"word", "start", "end", "conf"}], "duration",
        "final": True}, as offline greedy transcription gives (no word time past duration);
        then reset for the next one."""
        self._decode(self.step(torch.cat(self.pending) if self.pending else torch.zeros(0), True))
        lp = torch.cat(self.log_probs)
        words = []
        for a, b in pause_segments(lp, self.min_pause_frames, self.vocab.blank):
            seg = lp[a:b]  # decoded alone, as Transcriber.decode_window does
            words += shift_words(path_words(seg.argmax(dim=-1), seg, self.vocab, self.frame_s),
                                 a * self.frame_s)
        duration = round(self.samples / self.sample_rate, 3)
        words = clamp_words(words, duration)  # as transcribe: no time past the last sample
        result = {"text": " ".join(w["word"] for w in words), "words": words,
                  "duration": duration, "final": True}
        self.reset()
        return result


def _as_tensor(samples) -> torch.Tensor:
    if isinstance(samples, np.ndarray):
        samples = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    return samples.detach().float().cpu().reshape(-1)


def _file_blocks(path: str | Path, sample_rate: int, block: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks of a file: read block by block when it is at the model's rate,
    else loaded whole and resampled (resampling block by block would differ from offline)."""
    if sf.info(str(path)).samplerate == sample_rate:
        for b in sf.blocks(str(path), blocksize=block, dtype="float32", always_2d=True):
            yield b.mean(axis=1)
    else:
        wav = load_audio(path, sample_rate).numpy()
        for i in range(0, len(wav), block):
            yield wav[i:i + block]


def stream_file(recognizer: StreamingRecognizer, path: str | Path, chunk_ms: float | None = None,
                on_partial: Callable[[dict], None] | None = None) -> tuple[dict, dict]:
    """Stream an audio file through the recognizer in chunk_ms blocks (None: the recognizer's;
    a value becomes the recognizer's chunk) to measure what streaming costs.

    on_partial: called with each partial result. Returns (final result, stats): rtf (network
    and decoding time / audio duration; file reading not counted), latency_ms, chunks,
    audio_s, compute_s.
    """
    if chunk_ms is not None:
        recognizer.chunk_ms = chunk_ms
    recognizer.reset()
    compute, chunks = 0.0, 0
    for block in _file_blocks(path, recognizer.sample_rate, recognizer.chunk_samples):
        start = time.perf_counter()
        partial = recognizer.accept(block)
        compute += time.perf_counter() - start
        chunks += 1
        if on_partial is not None:
            on_partial(partial)
    start = time.perf_counter()
    final = recognizer.finish()
    compute += time.perf_counter() - start
    audio_s = final["duration"]
    return final, {"rtf": compute / audio_s if audio_s else 0.0,
                   "latency_ms": recognizer.latency_ms, "chunks": chunks,
                   "audio_s": audio_s, "compute_s": round(compute, 4)}


def stream_pcm(recognizer: StreamingRecognizer, binary_stream: BinaryIO,
               sample_rate: int | None = None, chunk_ms: float | None = None) -> Iterator[dict]:
    """Recognise raw 16-bit little-endian mono PCM (e.g. sys.stdin.buffer, `arecord -f S16_LE`)
    read chunk by chunk: yields a partial result per chunk, then the final one at end of stream.

    sample_rate must be the model's (None: assume it): resample upstream (sox, ffmpeg -ar),
    since resampling chunk by chunk would not give the offline signal. chunk_ms: as stream_file.
    """
    if sample_rate is not None and sample_rate != recognizer.sample_rate:
        raise ValueError(f"PCM at {sample_rate} Hz: the model needs {recognizer.sample_rate} Hz "
                         f"(resample upstream, e.g. ffmpeg -ar {recognizer.sample_rate})")
    if chunk_ms is not None:
        recognizer.chunk_ms = chunk_ms
    recognizer.reset()
    nbytes = 2 * recognizer.chunk_samples
    rest = b""
    while True:
        data = binary_stream.read(nbytes)
        if not data:
            break
        data, rest = rest + data, b""
        if len(data) % 2:  # a short read may split a sample
            data, rest = data[:-1], data[-1:]
        yield recognizer.accept(np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0)
    yield recognizer.finish()
