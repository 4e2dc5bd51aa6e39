"""`make bench-decode`: WER and speed of every decoder on the built-in test splits, in one run.

    python -m asr.bench.decode --config recipes/builtin/config.yaml [--no-peer] [overrides]

For each test split the audio files are read, featurised and run through the model once, one
file at a time as `asr transcribe` does (the front end, timed), and the network outputs are then
decoded by each decoder (timed separately):

* greedy, beam (lexicon-free, no LM) and beam_lm (lexicon + KenLM word LM) from asr.decoding.decoders,
  with the run's decode settings (tuned values from <exp_dir>/decode.yaml when present);
* pyctcdecode, the same LM search (same KenLM binary, its unigrams = our lexicon, alpha =
  lm_weight, beta = word_score, beam width = beam_size) as a peer. pyctcdecode needs numpy<2,
  so it runs in its own venv, .venv/bench (inside the ignored .venv/), which this module makes
  on first use from requirements/bench-pyctcdecode.txt (~80 s: kenlm compiles).

decoder RTF = decoding time / audio duration; pipeline RTF = (front end + decoding) / audio
duration. Loading the LM and building the lexicon trie happen once and are not counted (the
"load s" column). The table goes to stdout and <exp_dir>/bench_decode.md (+ .json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from asr.model import frame_seconds
from asr.scoring.score import wer
from asr.utils import atomic_write_text

PEER = "pyctcdecode"
PEER_VENV = Path(".venv/bench")
PEER_REQUIREMENTS = Path("requirements/bench-pyctcdecode.txt")


# ---------------------------------------------------------------- the front end, once

@torch.no_grad()
def front_end(model, features, manifest: Path, sample_rate: int) -> dict:
    """Read, featurise and run every utterance of a manifest, one file at a time.

    Returns {"ids", "refs", "log_probs": [(T, V)], "audio_s", "front_s"}.
    """
    from asr.data.audio import entry_audio
    from asr.data.manifest import read_manifest
    entries = list(read_manifest(manifest))
    out = {"ids": [], "refs": [], "log_probs": [], "audio_s": 0.0}
    t0 = time.perf_counter()
    for e in entries:
        wav = entry_audio(e, sample_rate)
        feats = features(wav).unsqueeze(0)
        lp, n = model(feats, torch.tensor([feats.shape[1]]))
        out["log_probs"].append(lp[0, :int(n[0])].float().contiguous())
        out["ids"].append(e["id"])
        out["refs"].append(e.get("text", ""))
        out["audio_s"] += len(wav) / sample_rate
    out["front_s"] = time.perf_counter() - t0
    return out


# ---------------------------------------------------------------- our decoders

def run_ours(name: str, settings, vocab, data: dict, frame_s: float) -> dict:
    """Decode a split's outputs with DECODERS[name]: {"texts", "decode_s", "load_s"}."""
    from asr.decoding.decoders import DECODERS, beam_search_for
    cfg = dataclasses.replace(settings, decoder=name)
    t0 = time.perf_counter()
    if name != "greedy":
        beam_search_for(vocab, cfg)  # load the LM / build the trie outside the timing
    load_s = time.perf_counter() - t0
    fn = DECODERS[name]
    t0 = time.perf_counter()
    texts = [fn(lp[None], torch.tensor([len(lp)]), vocab, cfg, frame_s=frame_s)[0]["text"]
             for lp in data["log_probs"]]
    return {"texts": texts, "decode_s": time.perf_counter() - t0, "load_s": load_s}


# ---------------------------------------------------------------- the pyctcdecode peer

def peer_python() -> Path:
    """The bench venv's python, creating the venv (pinned pyctcdecode, kenlm) when missing."""
    python = PEER_VENV / "bin" / "python"
    stamp = PEER_VENV / ".installed"
    if python.exists() and stamp.exists():
        return python
    print(f"bench-decode: making {PEER_VENV} for {PEER} (numpy<2; kenlm compiles, ~80 s)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "pip>=24"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(PEER_REQUIREMENTS)], check=True,
                   env={**os.environ, "CMAKE_BUILD_PARALLEL_LEVEL": "2"})
    stamp.touch()
    return python


def run_peer(settings, vocab, splits: dict[str, dict], workdir: Path) -> dict:
    """Decode every split with pyctcdecode in its venv: {split: {"texts", "decode_s", "load_s"}}."""
    job = {"labels": ["" if t == vocab.BLANK else t for t in vocab.tokens],
           "lm": str(settings.lm_path), "unigrams": str(settings.lexicon_path),
           "alpha": settings.lm_weight, "beta": settings.word_score,
           "beam_width": settings.beam_size, "splits": {}}
    import numpy as np
    for split, data in splits.items():
        path = workdir / f"{split}.npz"
        np.savez(path, **{f"u{i}": lp.numpy() for i, lp in enumerate(data["log_probs"])})
        job["splits"][split] = str(path)
    (workdir / "job.json").write_text(json.dumps(job))
    script = Path(__file__).with_name("pyctcdecode_peer.py")
    subprocess.run([str(peer_python()), str(script), str(workdir / "job.json"), str(workdir / "out.json")],
                   check=True)
    out = json.loads((workdir / "out.json").read_text())
    return {s: {**r, "load_s": out["load_s"]} for s, r in out["splits"].items()}


# ---------------------------------------------------------------- the table

def table(rows: list[dict], splits: list[str]) -> str:
    """Markdown: decoder | WER per split | decoder RTF | pipeline RTF | load s."""
    head = "| decoder | " + " | ".join(f"WER {s}" for s in splits) + " | decoder RTF | pipeline RTF | load s |"
    lines = [head, "|" + "---|" * (len(splits) + 4)]
    for r in rows:
        wers = " | ".join(f"{r['wer'][s]:.2f}%" for s in splits)
        lines.append(f"| {r['decoder']} | {wers} | {r['decoder_rtf']:.4f} | {r['pipeline_rtf']:.4f} | "
                     f"{r['load_s']:.1f} |")
    return "\n".join(lines)


def summarise(name: str, results: dict, splits: dict) -> dict:
    """One table row from per-split results (RTFs over all splits' audio together)."""
    audio = sum(d["audio_s"] for d in splits.values())
    dec = sum(results[s]["decode_s"] for s in splits)
    front = sum(d["front_s"] for d in splits.values())
    return {"decoder": name, "wer": {s: wer(splits[s]["refs"], results[s]["texts"]) for s in splits},
            "decoder_rtf": dec / audio, "pipeline_rtf": (front + dec) / audio,
            "decode_s": dec, "front_s": front, "audio_s": audio,
            "load_s": max(r["load_s"] for r in results.values())}


def ensure_lm(cfg, settings) -> None:
    """Build the LM (asr lm build) when the decode settings' LM or lexicon is missing."""
    if Path(settings.lm_path).is_file() and Path(settings.lexicon_path).is_file():
        return
    from asr.decoding.lm import build_config_lm, lm_paths
    print(f"bench-decode: no LM at {settings.lm_path}: building it from {lm_paths(cfg)['text']}",
          file=sys.stderr)
    build_config_lm(cfg)


def bench(source, peer: bool = True, threads: int = 0) -> list[dict]:
    """Run the benchmark for a recipe's run (asr.source.recipe_source, decoder beam_lm: its LM
    paths); returns the rows (also printed and written)."""
    from asr.data.features import FeatureExtractor
    cfg, settings, path = source.config, source.decode, source.checkpoint_path
    if threads or cfg.train.threads:
        torch.set_num_threads(threads or cfg.train.threads)
    model, vocab, feat_cfg, _ = source.network()
    features = FeatureExtractor(feat_cfg)
    ensure_lm(cfg, settings)
    frame_s = frame_seconds(feat_cfg.hop_ms, model.cfg.subsample)
    splits = {s: front_end(model, features, Path(cfg.data.root) / "manifests" / f"{s}.jsonl", feat_cfg.sample_rate)
              for s in cfg.data.test_splits}
    rows = []
    for name in ("greedy", "beam", "beam_lm"):
        rows.append(summarise(name, {s: run_ours(name, settings, vocab, d, frame_s) for s, d in splits.items()},
                              splits))
    if peer:
        with tempfile.TemporaryDirectory(prefix="bench-decode-") as tmp:
            rows.append(summarise(f"{PEER} (LM)", run_peer(settings, vocab, splits, Path(tmp)), splits))
    write(cfg, rows, list(splits), path, settings)
    return rows


def write(cfg, rows: list[dict], splits: list[str], checkpoint: Path, settings) -> None:
    md = table(rows, splits)
    note = (f"model {checkpoint}; LM {settings.lm_path} (weight {settings.lm_weight}, word score "
            f"{settings.word_score}), beam {settings.beam_size}; {torch.get_num_threads()} CPU thread(s); "
            f"RTF = seconds per second of audio; pipeline = read + features + network + decoder")
    print(md)
    print(note)
    out = Path(cfg.train.exp_dir)
    atomic_write_text(out / "bench_decode.md", f"# Decoders\n\n{md}\n\n{note}\n")
    atomic_write_text(out / "bench_decode.json", json.dumps(rows, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m asr.bench.decode", description=__doc__.split("\n")[0])
    p.add_argument("--config", help="recipe YAML")
    p.add_argument("--no-peer", action="store_true", help=f"leave out {PEER} (no extra venv)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default train.threads)")
    p.add_argument("overrides", nargs="*", help="section.key=value overrides")
    args = p.parse_args(argv)
    from asr.source import recipe_source
    bench(recipe_source(args.config, args.overrides, decoder="beam_lm"), peer=not args.no_peer,
          threads=args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
