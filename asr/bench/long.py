"""Long-recording check: transcribe an N-minute file built from known test utterances, and
compare memory, subtitles and word times with the truth.

    python -m asr.bench.long --config recipes/builtin/config.yaml [--minutes 30] [--decoder beam_lm]

1. Test utterances (cycled) are written one after another, with 0.5-1.5 s pauses, into
   <exp_dir>/long/long_<N>min.wav (streamed: the file is never in memory) and their offsets
   are recorded; a 5-minute file is made the same way.
2. Each file is transcribed by `asr transcribe` (txt, json, srt) in a fresh process that reports
   its own peak memory (ru_maxrss), so "flat memory" means: the N-minute file peaks no higher
   than the 5-minute one.
3. Reference word times: each utterance alone is run through the model and its reference text
   is forced-aligned to it (asr.decoding.align.align_text), shifted by the utterance's offset. The
   transcript's words are matched to the reference words (difflib), and the start/end of each
   matched word is compared; the SRT is parsed and each cue is checked against its words.
"""

from __future__ import annotations

import argparse
import difflib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from asr.model import frame_seconds
from asr.utils import atomic_write_text


def build_long_file(entries: list[dict], path: Path, minutes: float, sample_rate: int,
                    seed: int = 0) -> list[dict]:
    """Write utterances (cycled) with pauses until `minutes`; returns [{id, text, offset}]."""
    rng = np.random.default_rng(seed)
    placed, t, k = [], 0.0, 0
    with sf.SoundFile(path, "w", sample_rate, 1, subtype="PCM_16") as out:
        while t < minutes * 60:
            e = entries[k % len(entries)]
            k += 1
            wav, rate = sf.read(e["audio_filepath"], dtype="float32")
            if rate != sample_rate or wav.ndim != 1:
                continue  # the built-in corpus is 16 kHz mono; anything else is skipped
            placed.append({"id": e["id"], "text": e["text"], "offset": t})
            pause = np.zeros(int(rng.uniform(0.5, 1.5) * sample_rate), np.float32)
            out.write(wav)
            out.write(pause)
            t += (len(wav) + len(pause)) / sample_rate
    return placed


def transcribe_child(model: str, audio: str, out_dir: str, decoder: str, lm: str | None) -> None:
    """In a child process: asr transcribe, then print this process's peak RSS (MB) as JSON."""
    from asr.cli import main
    argv = ["transcribe", model, audio, "--format", "txt,json,srt", "--out", out_dir,
            "--decoder", decoder, "--no-progress"] + (["--lm", lm] if lm else [])
    t0 = time.perf_counter()
    rc = main(argv)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rc": rc, "peak_mb": round(peak_mb, 1), "wall_s": round(time.perf_counter() - t0, 1)}))


def run_transcribe(model: str, audio: Path, out_dir: Path, decoder: str, lm: str | None) -> dict:
    cmd = [sys.executable, "-m", "asr.bench.long", "--child", model, str(audio), str(out_dir), decoder, lm or ""]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@torch.no_grad()
def reference_words(run: str, placed: list[dict], entries: dict) -> list[dict]:
    """Forced-aligned word times of every placed utterance, in the long file's time line."""
    from asr.decoding.align import align_text
    from asr.data.audio import entry_audio
    from asr.checkpoint import load_checkpoint, model_from_checkpoint
    from asr.data.features import FeatureExtractor
    model, vocab, feat_cfg = model_from_checkpoint(load_checkpoint(run))
    features = FeatureExtractor(feat_cfg)
    frame_s = frame_seconds(feat_cfg.hop_ms, model.cfg.subsample)
    cache: dict[str, list[dict]] = {}
    words = []
    for p in placed:
        if p["id"] not in cache:
            feats = features(entry_audio(entries[p["id"]], feat_cfg.sample_rate)).unsqueeze(0)
            lp, n = model(feats, torch.tensor([feats.shape[1]]))
            cache[p["id"]] = align_text(lp[0, :int(n[0])], p["text"], vocab, frame_s)
        words += [{**w, "start": w["start"] + p["offset"], "end": w["end"] + p["offset"]} for w in cache[p["id"]]]
    return words


def matched_errors(hyp: list[dict], ref: list[dict]) -> list[float]:
    """Match words by spelling (difflib); per match, the larger of |start error|, |end error|."""
    sm = difflib.SequenceMatcher(a=[w["word"] for w in hyp], b=[w["word"] for w in ref], autojunk=False)
    return [max(abs(hyp[b.a + i]["start"] - ref[b.b + i]["start"]), abs(hyp[b.a + i]["end"] - ref[b.b + i]["end"]))
            for b in sm.get_matching_blocks() for i in range(b.size)]


def compare(hyp: list[dict], ref: list[dict], placed: list[dict]) -> dict:
    """Time errors of the hypothesis words that match reference words, utterance by utterance
    (the file repeats the test set, so matching is done within each utterance's time span)."""
    bounds = [p["offset"] for p in placed] + [float("inf")]
    errs = []
    for a, b in zip(bounds, bounds[1:]):
        errs += matched_errors([w for w in hyp if a <= w["start"] < b], [w for w in ref if a <= w["start"] < b])
    errs = np.array(errs or [np.nan])
    return {"matched_words": int(np.isfinite(errs).sum()), "ref_words": len(ref), "hyp_words": len(hyp),
            "within_0.1s": float(np.mean(errs <= 0.1)), "median_err_s": float(np.nanmedian(errs)),
            "p95_err_s": float(np.nanpercentile(errs, 95))}


def check_srt(srt_text: str, words: list[dict]) -> dict:
    """Parse the SRT; every cue's start/end must be its words' first start / last end."""
    from asr.transcribe.subtitles import parse_srt
    cues = parse_srt(srt_text)
    k, worst = 0, 0.0
    for c in cues:
        n = len(c.text.split())
        worst = max(worst, abs(c.start - words[k]["start"]), abs(c.end - words[k + n - 1]["end"]))
        k += n
    ordered = all(a.end <= b.start + 1e-6 for a, b in zip(cues, cues[1:]))
    return {"cues": len(cues), "cue_words_match": k == len(words), "cue_time_err_s": round(worst, 3),
            "monotonic": ordered}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        transcribe_child(argv[1], argv[2], argv[3], argv[4], argv[5] or None)
        return 0
    p = argparse.ArgumentParser(prog="python -m asr.bench.long", description=__doc__.split("\n")[0])
    p.add_argument("--config", help="recipe YAML")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--short-minutes", type=float, default=5.0, help="the file memory is compared with")
    p.add_argument("--decoder", default="beam_lm")
    p.add_argument("--split", default="test")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    from asr.data.manifest import read_manifest
    from asr.source import recipe_source
    source = recipe_source(args.config, args.overrides, decoder=args.decoder)
    cfg, run = source.config, str(source.checkpoint_path)
    lm = str(Path(source.decode.lm_path).parent) if args.decoder == "beam_lm" else None
    entries = list(read_manifest(Path(cfg.data.root) / "manifests" / f"{args.split}.jsonl"))
    work = Path(cfg.train.exp_dir) / "long"
    work.mkdir(parents=True, exist_ok=True)
    report = {}
    for minutes in (args.short_minutes, args.minutes):
        audio = work / f"long_{minutes:g}min.wav"
        placed = build_long_file(entries, audio, minutes, cfg.features.sample_rate)
        run_info = run_transcribe(run, audio, work / f"out_{minutes:g}min", args.decoder, lm)
        report[f"{minutes:g} min"] = {"audio_s": round(sf.info(audio).duration, 1), **run_info}
    hyp = json.loads((work / f"out_{args.minutes:g}min" / f"long_{args.minutes:g}min.json").read_text())["words"]
    ref = reference_words(run, placed, {e["id"]: e for e in entries})
    report["word_times"] = compare(hyp, ref, placed)
    report["srt"] = check_srt((work / f"out_{args.minutes:g}min" / f"long_{args.minutes:g}min.srt").read_text(), hyp)
    atomic_write_text(work / "report.json", json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
