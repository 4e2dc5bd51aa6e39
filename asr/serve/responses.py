"""A transcription result ({"text", "duration", "words"}) in the OpenAI audio API's response
formats: json, text, srt, vtt, verbose_json (segments, and words when asked for)."""

from __future__ import annotations

import dataclasses
import math
import zlib

from asr.transcribe.outputs import CueLimits
from asr.transcribe.subtitles import group_words, to_srt, to_vtt

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
MEDIA_TYPES = {"json": "application/json", "verbose_json": "application/json",
               "text": "text/plain; charset=utf-8", "srt": "text/plain; charset=utf-8",
               "vtt": "text/vtt; charset=utf-8"}
_CUES = dataclasses.asdict(CueLimits())  # segments and subtitles: asr transcribe's default cues


def render(result: dict, fmt: str, words: bool = False, language: str = "") -> dict | str:
    """The response body: a dict for the JSON formats, text for the others. words: include
    "words" in verbose_json (timestamp_granularities[]=word)."""
    if fmt == "json":
        return {"text": result["text"]}
    if fmt == "text":
        return result["text"] + "\n"
    cues = group_words(result["words"], **_CUES)
    if fmt == "srt":
        return to_srt(cues)
    if fmt == "vtt":
        return to_vtt(cues)
    if fmt == "verbose_json":
        return verbose_json(result, words, language)
    raise ValueError(f"unknown response_format {fmt!r} (known: {', '.join(FORMATS)})")


def verbose_json(result: dict, words: bool, language: str) -> dict:
    """OpenAI's verbose_json. Segments are the subtitle cues (asr.transcribe.subtitles); the
    fields that describe Whisper's sampling are given what they mean here: temperature 0
    (decoding is deterministic), avg_logprob the mean log confidence of the segment's words,
    compression_ratio of its text (zlib, as Whisper), no_speech_prob 0 (a segment exists only
    where words were heard), tokens [] (no text tokens to report)."""
    out = {"task": "transcribe", "language": language or "unknown",
           "duration": result["duration"], "text": result["text"],
           "segments": segments(result["words"]),
           "usage": {"type": "duration", "seconds": math.ceil(result["duration"])}}
    if words:
        out["words"] = [{"word": w["word"], "start": w["start"], "end": w["end"]} for w in result["words"]]
    return out


def segments(words: list[dict]) -> list[dict]:
    out, k = [], 0
    for i, cue in enumerate(group_words(words, **_CUES)):
        n = len(cue.text.split())
        confs = [max(1e-6, float(w.get("conf", 1.0))) for w in words[k:k + n]]
        k += n
        text = cue.text.encode()
        out.append({"id": i, "seek": 0, "start": cue.start, "end": cue.end, "text": cue.text,
                    "tokens": [], "temperature": 0.0,
                    "avg_logprob": sum(math.log(c) for c in confs) / len(confs),
                    "compression_ratio": len(text) / len(zlib.compress(text)),
                    "no_speech_prob": 0.0})
    return out
