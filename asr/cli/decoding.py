"""`asr decode`, `asr lm build`, `asr tune-lm` and `asr transcribe`.

    asr lm build  --config C [lm.order=3 ...]        KenLM word LM + lexicon from lm.text
    asr decode    --config C [decode.decoder=beam_lm ...]
    asr tune-lm   --config C [--method grid|random] [--trials N]
    asr transcribe MODEL PATH... [--decoder beam_lm] [--format txt,json,srt,vtt] [--out DIR]

The run's tuned decode settings (``<exp_dir>/decode.yaml``, written by ``asr tune-lm``) are
applied after the recipe and before command-line overrides, by decode, tune-lm, transcribe
(when MODEL is a run folder) and bench-decode.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import sys
import time
from pathlib import Path

import yaml

from asr.config import apply, load_config, parse_overrides

log = logging.getLogger(__name__)

TUNED = "decode.yaml"


# ---------------------------------------------------------------- configuration

def load_tuned(cfg, exp_dir: str | Path | None = None):
    """Apply <exp_dir>/decode.yaml (the tuned decode section) onto cfg when it exists."""
    path = Path(exp_dir or cfg.train.exp_dir) / TUNED
    if path.is_file():
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        apply(cfg, {"decode": values.get("decode", {})}, str(path))
        log.info("decode settings tuned by asr tune-lm: %s", path)
    return cfg


def run_config(config: str | None, overrides: list[str] | None):
    """Recipe defaults, then the run's tuned decode.yaml, then the command-line overrides
    (which also say which run: train.exp_dir)."""
    cfg = load_config(config, overrides)
    load_tuned(cfg)
    if overrides:
        apply(cfg, parse_overrides(overrides), "command line")
    return cfg


def decode_settings(cfg):
    """cfg.decode with its empty LM/lexicon paths filled from the lm section."""
    from asr.decoding.decoders import resolve_lm_paths
    from asr.decoding.lm import lm_paths
    return resolve_lm_paths(cfg.decode, lm_paths(cfg)["dir"])


def _device(name: str):
    import torch
    return torch.device("cuda" if name in ("auto", "cuda") and torch.cuda.is_available() else "cpu")


def _load_model(cfg):
    from asr.checkpoint import find_checkpoint, load_checkpoint, model_from_checkpoint
    path = find_checkpoint(cfg.train.exp_dir, cfg.decode.checkpoint)
    model, vocab, _ = model_from_checkpoint(load_checkpoint(path))
    return model, vocab, path


# ---------------------------------------------------------------- asr decode

def cmd_decode(args) -> int:
    from asr.data.store import open_store
    from asr.decoding.decoders import decode_store, write_hyps
    cfg = run_config(args.config, args.overrides)
    model, vocab, path = _load_model(cfg)
    device = _device(cfg.train.device)
    model.to(device)
    settings = decode_settings(cfg)
    for split in cfg.data.test_splits:
        store = open_store(cfg.data.root, split, cfg.features)
        t0 = time.perf_counter()
        hyps = decode_store(model, vocab, store, device, decoder=settings.decoder, cfg=settings)
        wall = time.perf_counter() - t0
        audio = sum(float(e.get("duration") or 0) for e in store.entries)
        out = Path(cfg.train.exp_dir) / f"decode_{split}_{settings.decoder}" / "hyp.jsonl"
        write_hyps(out, hyps)
        print(f"{split}: {len(hyps)} hypotheses -> {out} ({settings.decoder}, model {path}, "
              f"RTF {wall / audio if audio else float('nan'):.4f} incl. network)")
    return 0


# ---------------------------------------------------------------- asr lm build

def cmd_lm_build(args) -> int:
    from asr.decoding.lm import build_lm, lm_paths, lm_vocab
    cfg = load_config(args.config, args.overrides)
    paths = lm_paths(cfg)
    text = Path(args.text) if args.text else paths["text"]
    out = Path(args.out) if args.out else paths["dir"]
    if not text.is_file():
        raise FileNotFoundError(f"{text}: no LM training text (run `make data`, or give --text)")
    t0 = time.perf_counter()
    s = build_lm(text, out, order=cfg.lm.order, char_order=cfg.lm.char_order, memory=cfg.lm.memory,
                 discount_fallback=cfg.lm.discount_fallback, prune=cfg.lm.prune,
                 vocab=lm_vocab(cfg))  # bpe/unigram: lexicon in the model's pieces
    print(f"lm: {s['order']}-gram from {s['sentences']} sentences ({s['words']} words, "
          f"{s['dropped']} dropped) -> {s['binary']}; lexicon {s['lexicon_words']} words -> "
          f"{s['lexicon']}" + (f"; char {s['char_order']}-gram -> {s['char_binary']}" if cfg.lm.char_order else "")
          + f" ({time.perf_counter() - t0:.1f} s)")
    return 0


# ---------------------------------------------------------------- asr tune-lm

def dev_outputs(cfg, split: str):
    """Network outputs of a split, computed once: (list of (T, V) log-probs, refs, vocab, frame_s)."""
    import torch

    from asr.data.store import open_store
    from asr.decoding.decoders import _batches, forward_batch, store_hop_ms
    model, vocab, _ = _load_model(cfg)
    device = _device(cfg.train.device)
    model.to(device).eval()
    store = open_store(cfg.data.root, split, cfg.features)
    outs: dict[int, torch.Tensor] = {}
    for batch in _batches(store, 20000):
        lp, lens = forward_batch(model, [torch.from_numpy(store.features(i)) for i in batch], device)
        for k, i in enumerate(batch):
            outs[i] = lp[k, :lens[k]].clone()
    refs = [store.entries[i].get("text", "") for i in range(len(store))]
    return [outs[i] for i in range(len(store))], refs, vocab, store_hop_ms(store) / 1000 * model.cfg.subsample


def search_space(method: str, trials: int, weights: list[float], scores: list[float], seed: int):
    """(lm_weight, word_score) pairs: the full grid, or `trials` random draws from its ranges."""
    if method == "grid":
        return [(w, s) for w in weights for s in scores]
    rng = random.Random(seed)
    return [(round(rng.uniform(min(weights), max(weights)), 3), round(rng.uniform(min(scores), max(scores)), 3))
            for _ in range(trials)]


def evaluate(outputs, refs, vocab, settings) -> float:
    """WER (%) of beam_lm with these settings on precomputed network outputs."""
    import jiwer
    import torch

    from asr.decoding.decoders import DECODERS
    hyps = [DECODERS[settings.decoder](lp[None], torch.tensor([len(lp)]), vocab, settings)[0]["text"]
            for lp in outputs]
    pairs = [(r, h) for r, h in zip(refs, hyps) if r.strip()]
    return 100 * jiwer.wer([r for r, _ in pairs], [h for _, h in pairs])


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def cmd_tune_lm(args) -> int:
    cfg = run_config(args.config, args.overrides)
    split = args.split or cfg.data.dev_split
    cfg.decode.decoder = "beam_lm"  # before the LM paths are resolved (lm.bin + lexicon)
    base = decode_settings(cfg)
    outputs, refs, vocab, _ = dev_outputs(cfg, split)
    trials = []
    for w, s in search_space(args.method, args.trials, _floats(args.lm_weights), _floats(args.word_scores), args.seed):
        t0 = time.perf_counter()
        wer = evaluate(outputs, refs, vocab, dataclasses.replace(base, lm_weight=w, word_score=s))
        trials.append({"lm_weight": w, "word_score": s, "wer": round(wer, 3)})
        print(f"lm_weight {w:6.3f}  word_score {s:6.3f}  WER {wer:6.2f}%  ({time.perf_counter() - t0:.1f} s)",
              flush=True)
    best = min(trials, key=lambda t: t["wer"])
    exp = Path(cfg.train.exp_dir)
    exp.mkdir(parents=True, exist_ok=True)
    header = (f"# written by `asr tune-lm` ({args.method}, {len(trials)} trials on {split}): "
              f"beam_lm WER {best['wer']}%\n")
    decode = {"lm_weight": best["lm_weight"], "word_score": best["word_score"]}
    (exp / TUNED).write_text(header + yaml.safe_dump({"decode": decode}, sort_keys=False), encoding="utf-8")
    (exp / "tune_lm.json").write_text(json.dumps({"split": split, "trials": trials}, indent=1) + "\n",
                                      encoding="utf-8")
    print(f"best on {split}: lm_weight {best['lm_weight']}, word_score {best['word_score']} "
          f"(WER {best['wer']}%) -> {exp / TUNED}")
    return 0


# ---------------------------------------------------------------- asr transcribe

def run_folder(model: str | Path) -> Path | None:
    """The run folder of a model argument: the folder itself, or <run>/checkpoints/x.pt's run."""
    model = Path(model)
    if model.is_dir():
        return model
    return model.parent.parent if model.parent.name == "checkpoints" else None


def run_decode_config(run: Path | None):
    """Defaults + the run's saved data.root, lm and decode sections + its tuned decode.yaml
    (only those sections: a run saved by an older version may have other keys)."""
    from asr.config import Config
    cfg = Config()
    saved = run / "config.yaml" if run else None
    if saved and saved.is_file():
        values = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
        sections = {k: values[k] for k in ("decode", "lm") if isinstance(values.get(k), dict)}
        if isinstance(values.get("data"), dict) and "root" in values["data"]:
            sections["data"] = {"root": values["data"]["root"]}
        apply(cfg, sections, str(saved))
    if run:
        load_tuned(cfg, run)
    return cfg


def transcribe_settings(args):
    """(decoder name, DecodeConfig) for `asr transcribe`: the run's config and tuned values when
    MODEL is a run folder, then the flags."""
    from asr.decoding.decoders import resolve_lm_paths
    from asr.decoding.lm import lm_paths
    run = run_folder(args.model)
    cfg = run_decode_config(run)
    d = cfg.decode
    decoder = args.decoder or d.decoder
    flags = {"lm_weight": args.lm_weight, "word_score": args.word_score, "beam_size": args.beam_size,
             "hotword_weight": args.hotword_weight, "lexicon": args.lexicon_mode,
             "lexicon_path": args.lexicon, "hotwords_file": args.hotwords}
    d = dataclasses.replace(d, decoder=decoder, **{k: v for k, v in flags.items() if v is not None})
    if args.hotword:
        d = dataclasses.replace(d, hotwords=list(d.hotwords) + args.hotword)
    lm_dir = lm_paths(cfg)["dir"]
    if args.lm:
        lm = Path(args.lm)
        lm_dir = lm if lm.is_dir() else lm.parent
        if not lm.is_dir():
            d = dataclasses.replace(d, lm_path=str(lm))
    return decoder, resolve_lm_paths(d, lm_dir)


def cmd_transcribe(args) -> int:
    from asr.transcribe.transcriber import Chunking, transcribe_files
    formats = [f for f in args.format.split(",") if f]
    if args.out is None and any(f in ("srt", "vtt") for f in formats) and len(args.files) > 1:
        raise ValueError("subtitles for several files need --out DIR")
    decoder, settings = transcribe_settings(args)
    results, errors = transcribe_files(
        args.model, args.files, args.device, decoder, settings, Chunking(args.chunk_s, args.overlap_s, args.min_pause_s),
        formats, args.out, progress=not args.no_progress)
    if args.out is not None:
        print(f"{len(results)} file(s) transcribed -> {args.out}", file=sys.stderr)
    if errors:
        print(f"{len(errors)} of {len(results) + len(errors)} file(s) could not be transcribed:",
              file=sys.stderr)
        for msg in errors.values():
            print(f"  {msg}", file=sys.stderr)
    return 0 if results else 1


# ---------------------------------------------------------------- registration

def _transcribe_parser(sub) -> None:
    p = sub.add_parser("transcribe", help="transcribe audio files or folders (txt, json, srt, vtt)")
    p.add_argument("model", help="checkpoint file or run folder")
    p.add_argument("files", nargs="+", help="audio files or folders (any rate/channels; wav, flac, ogg, mp3, ...)")
    p.add_argument("--decoder", choices=["greedy", "beam", "beam_lm"], help="default: the run's decode.decoder")
    p.add_argument("--lm", help="LM folder (lm.bin + lexicon.txt, from asr lm build) or a KenLM file")
    p.add_argument("--lexicon", help="lexicon file (default: lexicon.txt beside the LM)")
    p.add_argument("--lexicon-mode", choices=["auto", "on", "off"], help="lexicon-constrained search")
    p.add_argument("--lm-weight", type=float)
    p.add_argument("--word-score", type=float)
    p.add_argument("--beam-size", type=int)
    p.add_argument("--hotword", action="append", default=[], help="word or phrase to favour (repeatable)")
    p.add_argument("--hotwords", help="file of words/phrases to favour, one a line")
    p.add_argument("--hotword-weight", type=float, help="bonus per matching word (default 3)")
    p.add_argument("--format", default="txt", help="txt, json, srt, vtt or several: txt,srt (default txt)")
    p.add_argument("--out", help="folder for <name>.<format> files (default: stdout)")
    p.add_argument("--chunk-s", type=float, default=30.0, help="window length for long files (s)")
    p.add_argument("--overlap-s", type=float, default=4.0, help="overlap of neighbouring windows (s)")
    p.add_argument("--min-pause-s", type=float, default=0.4,
                   help="a pause this long splits a window into separately decoded segments (0: never)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_transcribe)


def add_commands(sub, stage) -> None:
    """Register decoding subcommands on the `asr` parser (stage() adds --config/overrides)."""
    stage("decode", cmd_decode, "decode the test splits into hyp.jsonl (decode.decoder=greedy|beam|beam_lm)")
    lm = sub.add_parser("lm", help="language models (asr lm build)")
    lm_sub = lm.add_subparsers(dest="lm_command", required=True)
    b = lm_sub.add_parser("build", help="KenLM word n-gram (ARPA + binary) and lexicon from lm.text")
    b.add_argument("--config", help="recipe YAML (lm section)")
    b.add_argument("--text", help="training text (default lm.text or <data.root>/manifests/train_text.txt)")
    b.add_argument("--out", help="output folder (default lm.dir or <data.root>/lm)")
    b.add_argument("overrides", nargs="*", help="section.key=value overrides (lm.order=3 ...)")
    b.set_defaults(func=cmd_lm_build)
    t = stage("tune-lm", cmd_tune_lm, "search LM weight / word score on dev; writes <exp_dir>/decode.yaml")
    t.add_argument("--method", choices=["grid", "random"], default="grid")
    t.add_argument("--trials", type=int, default=20, help="random search: number of trials")
    t.add_argument("--lm-weights", default="0.25,0.5,0.75,1,1.5,2", help="grid values (random: range)")
    t.add_argument("--word-scores", default="-3,-2,-1,0,1", help="grid values (random: range)")
    t.add_argument("--split", help="split to tune on (default data.dev_split)")
    t.add_argument("--seed", type=int, default=0)
    _transcribe_parser(sub)
