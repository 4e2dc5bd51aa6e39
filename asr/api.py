"""The Python API: ``model = asr.load(PATH)`` and ``model.transcribe(...)``.

    import asr
    model = asr.load("exp/builtin/run1")                 # a bundle, run folder or checkpoint
    print(model.transcribe("a.wav").text)                # one file
    for t in model.transcribe(["a.wav", "b.flac"]):      # many files, batched through the network
        print(t.path, t.text, [(w.word, w.start, w.conf) for w in t.words])
    model.transcribe(samples, sample_rate=8000)          # a NumPy array or tensor of samples

It runs what `asr transcribe` runs (the same Transcriber, decoders and tuned settings), so the
CLI and the API cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asr.data.audio import AudioError
from asr.transcribe.transcriber import BATCH_SIZE, Chunking, Transcriber
from asr.transcribe.vad import VadSettings


@dataclass(frozen=True)
class Word:
    """One recognised word: its times in seconds from the start and a confidence in [0, 1]."""

    word: str
    start: float
    end: float
    conf: float


@dataclass(frozen=True)
class Transcript:
    """The text of one input with its timed words.

    text: the words separated by spaces. words: the Words, in time order, none ending after
    duration. duration: the input's length in seconds. path: the file as given, or "<array>".
    error: None when the input was transcribed; else the reason it could not be (the message
    of the AudioError naming the input: unreadable, missing, empty, too short, bad samples),
    and then text is "", words [] and duration 0.0. Only a list of inputs gives Transcripts
    with an error, so one bad file among many loses nothing else; a single input raises the
    AudioError instead.
    """

    text: str
    words: list[Word]
    duration: float
    path: str
    error: str | None = None

    @classmethod
    def from_result(cls, result: dict) -> "Transcript":
        words = [Word(w["word"], float(w["start"]), float(w["end"]), float(w.get("conf", 1.0)))
                 for w in result["words"]]
        return cls(result["text"], words, float(result["duration"]), result["path"])


class Model:
    """A loaded recogniser. transcribe(): text and timed words; stream(): a streaming recogniser
    (unidirectional models). decoder, device, sample_rate: what it runs with."""

    def __init__(self, transcriber: Transcriber):
        self.transcriber = transcriber

    @property
    def decoder(self) -> str:
        return self.transcriber.decode_cfg.decoder

    @property
    def device(self) -> str:
        return str(self.transcriber.device)

    @property
    def sample_rate(self) -> int:
        return self.transcriber.sample_rate

    def transcribe(self, audio, sample_rate: int | None = None):
        """A Transcript for one file path or one array of samples, a list of Transcripts for a
        list of them (AudioError for a single input that cannot be used; in a list, its
        Transcript's error says why).

        An array (NumPy or torch) needs sample_rate (any rate), mono or (samples, channels), of
        floats (full scale +-1: float16/32/64) or integer PCM scaled as WAV does (int16, int32,
        uint8 centred on 128); any other dtype (int64, bool, complex, object) is refused."""
        single = isinstance(audio, (str, Path)) or not isinstance(audio, (list, tuple))
        items = [audio] if single else list(audio)
        out = []
        for item, result in self.transcriber.transcribe_many(items, sample_rate):
            if isinstance(result, AudioError):
                out.append(Transcript("", [], 0.0, str(item) if isinstance(item, (str, Path)) else "<array>",
                                      error=str(result)))
            else:
                out.append(Transcript.from_result(result))
        if single and out[0].error:
            raise AudioError(out[0].error)
        return out[0] if single else out

    def stream(self, chunk_ms: int = 200, min_pause_s: float | None = None):
        """A streaming recogniser fed with accept(samples) and finish() (asr.streaming), on this
        model's device (the PyTorch network, whatever the engine; greedy decoding);
        min_pause_s: pauses that end a word (default: this model's transcribe setting)."""
        from asr.streaming import StreamingRecognizer
        t = self.transcriber
        model, vocab, feat_cfg, _ = t.source.network(device=t.device)
        pause = t.chunking.min_pause_s if min_pause_s is None else min_pause_s
        return StreamingRecognizer(model, vocab, feat_cfg, chunk_ms=chunk_ms, min_pause_s=pause)


def load(path: str | Path, device: str = "auto", decoder: str | None = None, engine: str = "torch",
         batch_size: int = BATCH_SIZE, chunking: Chunking | None = None, verify: bool = True,
         vad: bool | VadSettings = False, **decode_settings) -> Model:
    """Load a model from a bundle (`asr bundle`), a run folder or a checkpoint file.

    device: "auto" (CUDA when there is one), "cpu" or "cuda". decoder: "greedy", "beam" or
    "beam_lm"; None = the model's best (beam + LM when it has an LM). engine: "torch", "onnx",
    "onnx-int8" or "torchscript" (exported into the bundle by `asr export`). batch_size: windows
    run through the network together. verify: check a bundle's checksums. vad: decode only
    the speech that voice-activity detection finds (True, or VadSettings; needs silero-vad).
    decode_settings: DecodeConfig fields to override (lm_weight=0.8, beam_size=16, ...).
    """
    from asr.source import model_source
    source = model_source(path, verify=verify).with_settings(decoder, **decode_settings)
    vad_settings = VadSettings() if vad is True else (vad or None)
    return Model(Transcriber(source, device, chunking=chunking, engine=engine, batch_size=batch_size,
                             vad=vad_settings))
