"""`asr decode`, `asr lm build`, `asr tune-lm` and `asr transcribe`.

    asr lm build  --config C [lm.order=3 ...]        KenLM word LM + lexicon from lm.text
    asr decode    --config C [decode.decoder=beam_lm ...]
    asr tune-lm   --config C [--method grid|random] [--trials N]
    asr transcribe MODEL PATH... [--decoder beam_lm] [--format txt,json,srt,vtt] [--out DIR]

Argument parsing and printing only: the settings layering (recipe, the run's tuned
decode.yaml, overrides) and the tune-lm search are in asr.decoding.tuning.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from asr.config import load_config


# ---------------------------------------------------------------- asr decode

def cmd_decode(args) -> int:
    from asr.checkpoint import load_run_model
    from asr.data.store import open_store
    from asr.decoding.decoders import decode_store, write_hyps
    from asr.decoding.tuning import decode_settings, run_config
    from asr.utils import pick_device
    cfg = run_config(args.config, args.overrides)
    model, vocab, path = load_run_model(cfg.train.exp_dir, cfg.decode.checkpoint)
    device = pick_device(cfg.train.device, setting="train.device")
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

def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _print_trial(t: dict, seconds: float) -> None:
    print(f"lm_weight {t['lm_weight']:6.3f}  word_score {t['word_score']:6.3f}  WER {t['wer']:6.2f}%  "
          f"({seconds:.1f} s)", flush=True)


def cmd_tune_lm(args) -> int:
    from asr.checkpoint import load_run_model
    from asr.data.store import open_store
    from asr.decoding import tuning
    from asr.utils import pick_device
    cfg = tuning.run_config(args.config, args.overrides)
    split = args.split or cfg.data.dev_split
    cfg.decode.decoder = "beam_lm"  # before the LM paths are resolved (lm.bin + lexicon)
    base = tuning.decode_settings(cfg)
    model, vocab, _ = load_run_model(cfg.train.exp_dir, cfg.decode.checkpoint)
    store = open_store(cfg.data.root, split, cfg.features)
    outputs = tuning.split_outputs(model, store, pick_device(cfg.train.device, setting="train.device"))
    refs = [e.get("text", "") for e in store.entries]
    space = tuning.search_space(args.method, args.trials, _floats(args.lm_weights),
                                _floats(args.word_scores), args.seed)
    trials = tuning.tune(outputs, refs, vocab, base, space, on_trial=_print_trial)
    best = tuning.write_tuned(cfg.train.exp_dir, split, args.method, trials)
    print(f"best on {split}: lm_weight {best['lm_weight']}, word_score {best['word_score']} "
          f"(WER {best['wer']}%) -> {Path(cfg.train.exp_dir) / tuning.TUNED}")
    return 0


# ---------------------------------------------------------------- asr transcribe

def transcribe_settings(args):
    """(decoder name, DecodeConfig) for `asr transcribe`: the run's config and tuned values when
    MODEL is a run folder, then the flags."""
    from asr.decoding.decoders import resolve_lm_paths
    from asr.decoding.lm import lm_paths
    from asr.decoding.tuning import run_folder, saved_run_config
    cfg = saved_run_config(run_folder(args.model))
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
