"""`make bench-ship`: the shipped forms of one model side by side, in one run.

    python -m asr.bench.ship BUNDLE MANIFEST [--limit N] [--decoder greedy|beam_lm] [--threads 2]
                             [--repeats 5] [--out FIGURES.json]
                             [--streaming-bundle UNIDIRECTIONAL_BUNDLE]

For each engine (PyTorch, ONNX fp32, ONNX int8; exported into the bundle first when missing)
the manifest's audio files are transcribed as `asr transcribe` does (read, resample, features,
network, decoder), and the table gives the pipeline RTF (wall time / audio time; the median of
--repeats rounds, the engines taking turns), the speed-up over PyTorch (the median of the
rounds' ratios), the network file's size, the WER against the manifest's text and how many
texts equal PyTorch's. A
unidirectional model (the bundle, or --streaming-bundle) is also streamed (asr.streaming):
latency (chunk + lookahead), RTF, WER and whether every final text equals its offline decoding.
Figures go to stdout and to --out (default BUNDLE.bench_ship.json, beside the bundle: a file
written into it would break its checksums).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from asr.data.manifest import read_manifest
from asr.bundle import EXPORTED, MODEL, export_bundle
from asr.scoring.score import wer
from asr.transcribe.transcriber import Transcriber
from asr.utils import atomic_write_text

ENGINES = ("torch", "onnx", "onnx-int8")


def first_entries(path: Path, limit: int) -> list[dict]:
    entries = list(read_manifest(path))  # audio paths resolved against the manifest's folder
    return entries[:limit] if limit else entries


def timed_pass(t: Transcriber, files: list) -> tuple[float, dict]:
    """One transcription of all files: (wall seconds, {file: result or AudioError})."""
    start = time.perf_counter()
    hyps = {str(item): r for item, r in t.transcribe_many(files)}
    return time.perf_counter() - start, hyps


def run_engines(bundle: Path, engines, entries: list[dict], decoder: str, repeats: int) -> list[dict]:
    """Each engine's row. The engines take turns, `repeats` rounds; a row has the median of its
    rounds' wall times (rtf) and the median of its per-round speed-ups over the first engine."""
    files = [e["audio_filepath"] for e in entries]
    audio = sum(float(e["duration"]) for e in entries)
    transcribers = {e: Transcriber(bundle, device="cpu", decoder=decoder, engine=e) for e in engines}
    for t in transcribers.values():
        list(t.transcribe_many(files[:2]))  # warm-up: first calls allocate and load the LM
    walls: dict[str, list[float]] = {e: [] for e in engines}
    hyps: dict[str, dict] = {}
    for _ in range(repeats):
        for engine, t in transcribers.items():
            wall, hyps[engine] = timed_pass(t, files)
            walls[engine].append(wall)
    rows = []
    for engine in engines:
        # paired: each round's ratio to the first engine's wall time in the same round, so a
        # slow spell of a shared machine cancels out; the median of those ratios
        speedup = statistics.median(a / b for a, b in zip(walls[engines[0]], walls[engine]))
        results = [hyps[engine][str(f)] for f in files]
        texts = [r["text"] if isinstance(r, dict) else "" for r in results]  # AudioError: ""
        size = (bundle / (MODEL if engine == "torch" else EXPORTED[engine])).stat().st_size
        wall = statistics.median(walls[engine])
        rows.append({"engine": engine, "decoder": decoder, "rtf": wall / audio, "seconds": wall,
                     "rounds_s": walls[engine], "speedup": speedup, "audio_s": audio,
                     "size_mb": size / 1e6,
                     "wer": wer([e["text"] for e in entries], texts), "texts": texts})
    return rows


def run_streaming(bundle: Path, entries: list[dict], chunk_ms: int) -> dict | None:
    from asr.source import model_source
    from asr.streaming import StreamingRecognizer, stream_file
    model, vocab, feat_cfg, _ = model_source(bundle).network()
    if model.cfg.bidirectional:
        return None
    rec = StreamingRecognizer(model, vocab, feat_cfg, chunk_ms=chunk_ms)
    wall = audio = 0.0
    texts = []
    for e in entries:
        final, stats = stream_file(rec, e["audio_filepath"], chunk_ms)
        texts.append(final["text"])
        wall += stats["rtf"] * float(e["duration"])
        audio += float(e["duration"])
    offline = run_engines(bundle, ["torch"], entries, "greedy", 1)[0]["texts"]
    return {"bundle": str(bundle), "chunk_ms": chunk_ms, "latency_ms": rec.latency_ms,
            "rtf": wall / audio, "wer": wer([e["text"] for e in entries], texts),
            "equal_to_offline": sum(a == b for a, b in zip(texts, offline))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("bundle", type=Path)
    p.add_argument("manifest", type=Path, help="JSONL with audio_filepath, duration, text")
    p.add_argument("--limit", type=int, default=0, help="first N utterances (0 = all)")
    p.add_argument("--decoder", default="greedy", choices=["greedy", "beam", "beam_lm"])
    p.add_argument("--threads", type=int, default=2, help="torch / onnxruntime threads")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per engine (median reported)")
    p.add_argument("--chunk-ms", type=int, default=200, help="streaming chunk")
    p.add_argument("--streaming-bundle", type=Path,
                   help="a unidirectional model's bundle to stream (default: BUNDLE, if unidirectional)")
    p.add_argument("--out", type=Path, help="the figures as JSON (default: BUNDLE.bench_ship.json)")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    out = args.out or args.bundle.with_name(args.bundle.name + ".bench_ship.json")
    torch.set_num_threads(args.threads)
    if not (args.bundle / EXPORTED["onnx-int8"]).is_file():
        export_bundle(args.bundle, "onnx", int8=True)
    entries = first_entries(args.manifest, args.limit)
    rows = run_engines(args.bundle, ENGINES, entries, args.decoder, args.repeats)
    base = rows[0]
    print(f"{len(entries)} utterances, {base['audio_s'] / 60:.1f} min of audio, decoder {args.decoder}, "
          f"{args.threads} threads, median of {args.repeats} rounds")
    print("| engine | pipeline RTF | speed-up | network MB | WER % | ΔWER | text = PyTorch's |\n"
          "|---|---|---|---|---|---|---|")
    for r in rows:
        same = sum(a == b for a, b in zip(r["texts"], base["texts"]))
        print(f"| {r['engine']} | {r['rtf']:.4f} | {r['speedup']:.2f}× | {r['size_mb']:.1f} | "
              f"{r['wer']:.2f} | {r['wer'] - base['wer']:+.2f} | {same}/{len(entries)} |")
    stream = run_streaming(args.streaming_bundle or args.bundle, entries, args.chunk_ms)
    print("streaming: " + (f"{stream['bundle']}: latency {stream['latency_ms']:.0f} ms (chunk {args.chunk_ms} ms "
                           f"+ lookahead + half an FFT window), RTF {stream['rtf']:.4f}, WER {stream['wer']:.2f}, "
                           f"final text = offline on {stream['equal_to_offline']}/{len(entries)}" if stream
                           else "n/a (bidirectional model: it needs the whole utterance)"))
    atomic_write_text(out,
                      json.dumps({"rows": rows, "streaming": stream, "utterances": len(entries)}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
