"""`make bench-ship`: the shipped forms of one model side by side, in one run.

    python -m asr.bench.ship BUNDLE MANIFEST [--limit N] [--decoder greedy|beam_lm] [--threads 2]
                             [--streaming-bundle UNIDIRECTIONAL_BUNDLE]

For each engine (PyTorch, ONNX fp32, ONNX int8; exported into the bundle first when missing)
the manifest's audio files are transcribed as `asr transcribe` does (read, resample, features,
network, decoder), and the table gives the pipeline RTF (wall time / audio time), the
network file's size, the WER against the manifest's text and how many texts equal PyTorch's. A
unidirectional model (the bundle, or --streaming-bundle) is also streamed (asr.streaming):
latency (chunk + lookahead), RTF, WER and whether every final text equals its offline decoding.
Figures go to stdout and to BUNDLE/bench_ship.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from asr.data.manifest import read_manifest
from asr.bundle import EXPORTED, MODEL, export_bundle, load_bundle
from asr.scoring.score import wer
from asr.transcribe.transcriber import Transcriber
from asr.utils import atomic_write_text

ENGINES = ("torch", "onnx", "onnx-int8")


def first_entries(path: Path, limit: int) -> list[dict]:
    entries = list(read_manifest(path))  # audio paths resolved against the manifest's folder
    return entries[:limit] if limit else entries


def run_engine(bundle: Path, engine: str, entries: list[dict], decoder: str) -> dict:
    t = Transcriber(bundle, device="cpu", decoder=decoder, engine=engine)
    files = [e["audio_filepath"] for e in entries]
    list(t.transcribe_many(files[:2]))  # warm-up: first calls allocate and load the LM
    start = time.perf_counter()
    hyps = {str(item): r for item, r in t.transcribe_many(files)}
    wall = time.perf_counter() - start
    audio = sum(float(e["duration"]) for e in entries)
    texts = [hyps[f]["text"] if isinstance(hyps[f], dict) else "" for f in files]
    size = (bundle / (MODEL if engine == "torch" else EXPORTED[engine])).stat().st_size
    return {"engine": engine, "decoder": decoder, "rtf": wall / audio, "seconds": wall,
            "audio_s": audio, "size_mb": size / 1e6, "wer": wer([e["text"] for e in entries], texts),
            "texts": texts}


def run_streaming(bundle: Path, entries: list[dict], chunk_ms: int) -> dict | None:
    from asr.checkpoint import model_from_checkpoint
    from asr.streaming import StreamingRecognizer, stream_file
    model, vocab, feat_cfg = model_from_checkpoint(load_bundle(bundle).checkpoint)
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
    offline = run_engine(bundle, "torch", entries, "greedy")["texts"]
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
    p.add_argument("--chunk-ms", type=int, default=200, help="streaming chunk")
    p.add_argument("--streaming-bundle", type=Path,
                   help="a unidirectional model's bundle to stream (default: BUNDLE, if unidirectional)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not (args.bundle / EXPORTED["onnx-int8"]).is_file():
        export_bundle(args.bundle, "onnx", int8=True)
    entries = first_entries(args.manifest, args.limit)
    rows = [run_engine(args.bundle, e, entries, args.decoder) for e in ENGINES]
    base = rows[0]
    print(f"{len(entries)} utterances, {base['audio_s'] / 60:.1f} min of audio, decoder {args.decoder}, "
          f"{args.threads} threads")
    print("| engine | pipeline RTF | speed-up | network MB | WER % | ΔWER | text = PyTorch's |\n"
          "|---|---|---|---|---|---|---|")
    for r in rows:
        same = sum(a == b for a, b in zip(r["texts"], base["texts"]))
        print(f"| {r['engine']} | {r['rtf']:.4f} | {base['rtf'] / r['rtf']:.2f}× | {r['size_mb']:.1f} | "
              f"{r['wer']:.2f} | {r['wer'] - base['wer']:+.2f} | {same}/{len(entries)} |")
    stream = run_streaming(args.streaming_bundle or args.bundle, entries, args.chunk_ms)
    print("streaming: " + (f"{stream['bundle']}: latency {stream['latency_ms']:.0f} ms (chunk {args.chunk_ms} ms "
                           f"+ lookahead + half an FFT window), RTF {stream['rtf']:.4f}, WER {stream['wer']:.2f}, "
                           f"final text = offline on {stream['equal_to_offline']}/{len(entries)}" if stream
                           else "n/a (bidirectional model: it needs the whole utterance)"))
    atomic_write_text(args.bundle / "bench_ship.json",
                      json.dumps({"rows": rows, "streaming": stream, "utterances": len(entries)}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
