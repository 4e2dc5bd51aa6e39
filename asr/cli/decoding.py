"""`asr decode`, `asr lm build`, `asr tune-lm` and `asr transcribe`.

    asr lm build  --config C [lm.order=3 ...]        KenLM word LM + lexicon from lm.text
    asr decode    --config C [decode.decoder=beam_lm ...]
    asr tune-lm   --config C [--method grid|random] [--trials N] [--decoder beam_lm]
    asr transcribe MODEL PATH... [--decoder beam_lm] [--format txt,json,srt,vtt,tsv,ctm] [--out DIR]
                                 [--engine onnx] [--stream]
    asr bundle RUN OUT                               one self-contained folder to ship
    asr export BUNDLE --format onnx|torchscript [--int8]

Argument parsing and printing only: which model with which settings (recipe, the run's tuned
decode.yaml, overrides) is asr.source's answer; the tune-lm search is asr.decoding.tuning.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from asr.config import load_config
from asr.run_folder import RunFolder


# ---------------------------------------------------------------- asr decode

def cmd_decode(args) -> int:
    from asr.data.store import open_store
    from asr.decoding.decoders import decode_store, write_hyps
    from asr.source import recipe_source
    from asr.utils import pick_device
    if not args.config:  # the defaults name no run of yours
        raise ValueError("asr decode needs --config RECIPE: the recipe of the run to decode "
                         "(e.g. --config recipes/builtin/config.yaml)")
    source = recipe_source(args.config, args.overrides)
    cfg, settings = source.config, source.decode
    model, vocab, _, _ = source.network(device=pick_device(cfg.train.device, setting="train.device"))
    for split in cfg.data.test_splits:
        store = open_store(cfg.data.root, split, cfg.features)
        t0 = time.perf_counter()
        hyps = decode_store(model, vocab, store, next(model.parameters()).device, settings)
        wall = time.perf_counter() - t0
        audio = sum(float(e.get("duration") or 0) for e in store.entries)
        out = RunFolder(cfg.train.exp_dir).new_hyps(split, settings.decoder)
        write_hyps(out, hyps)
        print(f"{split}: {len(hyps)} hypotheses -> {out} ({settings.decoder}, model "
              f"{source.checkpoint_path}, RTF {wall / audio if audio else float('nan'):.4f} incl. network)")
    return 0


# ---------------------------------------------------------------- asr lm build

def cmd_lm_install_tools(args) -> int:
    from asr.decoding.kenlm_tools import KenlmBuildError, install_tools
    try:
        bin_dir = install_tools(args.prefix, args.jobs)
    except KenlmBuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"KenLM tools: {bin_dir}/lmplz, {bin_dir}/build_binary")
    return 0


def cmd_lm_build(args) -> int:
    from asr.decoding.lm import build_config_lm
    cfg = load_config(args.config, args.overrides)
    t0 = time.perf_counter()
    s = build_config_lm(cfg, args.text, args.out)
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
    from asr.data.store import open_store
    from asr.decoding import tuning
    from asr.decoding.decoders import get_decoder
    from asr.source import recipe_source
    from asr.utils import pick_device
    if not args.config:  # the defaults name no run of yours
        raise ValueError("asr tune-lm needs --config RECIPE: the recipe of the run to tune "
                         "(e.g. --config recipes/builtin/config.yaml)")
    get_decoder(args.decoder)  # an unknown name fails before the network runs
    source = recipe_source(args.config, args.overrides, decoder=args.decoder)
    cfg = source.config
    split = args.split or cfg.data.dev_split
    model, vocab, _, _ = source.network()
    store = open_store(cfg.data.root, split, cfg.features)
    outputs = tuning.split_outputs(model, store, pick_device(cfg.train.device, setting="train.device"))
    refs = [e.get("text", "") for e in store.entries]
    space = tuning.search_space(args.method, args.trials, _floats(args.lm_weights),
                                _floats(args.word_scores), args.seed)
    trials = tuning.tune(outputs, refs, vocab, source.decode, space, on_trial=_print_trial, nj=cfg.data.nj)
    best = tuning.write_tuned(cfg.train.exp_dir, split, args.method, trials, decoder=args.decoder)
    print(f"best on {split}: lm_weight {best['lm_weight']}, word_score {best['word_score']} "
          f"(WER {best['wer']}%) -> {RunFolder(cfg.train.exp_dir).tuned}")
    return 0


# ---------------------------------------------------------------- asr transcribe

def cmd_transcribe(args) -> int:
    """`asr transcribe`. Exit status: 0 every file transcribed, 3 some files could not be (each
    named on stderr), 1 none could, 2 a usage error (bad flags, model or --out)."""
    import argparse
    from asr.source import model_source
    from asr.transcribe.outputs import CueLimits, stdout_text
    from asr.transcribe.transcriber import BATCH_SIZE, Chunking, Transcriber, transcribe_files
    from asr.transcribe.vad import VadSettings
    # the flags given a value other than their default: a flag the chosen path ignores is refused
    sub = argparse.ArgumentParser().add_subparsers()
    _transcribe_parser(sub)
    defaults = vars(sub.choices["transcribe"].parse_args(["MODEL", "FILE"]))
    given = {"--" + k.replace("_", "-"): v for k, v in vars(args).items()
             if k in defaults and k not in ("model", "files") and v != defaults[k]}
    if args.stream:
        return cmd_stream(args, given)
    stream_only = sorted(set(given) & {"--chunk-ms", "--rate"})
    if stream_only:
        print(f"error: {', '.join(stream_only)}: only used with --stream", file=sys.stderr)
        return 2
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        print(f"error: --out {args.out}: is a file; give a folder for the outputs (made if missing)",
              file=sys.stderr)
        return 2
    formats = [f for f in args.format.split(",") if f]
    if args.out is None and any(f in ("srt", "vtt", "tsv", "ctm") for f in formats) and len(args.files) > 1:
        raise ValueError("srt/vtt/tsv/ctm output for several files needs --out DIR")
    source = model_source(args.model).with_settings(
        args.decoder, args.lm, args.hotword, lm_weight=args.lm_weight, word_score=args.word_score,
        beam_size=args.beam_size, hotword_weight=args.hotword_weight, lexicon=args.lexicon_mode,
        lexicon_path=args.lexicon, hotwords_file=args.hotwords)
    chunking = Chunking(args.chunk_s, args.overlap_s, args.min_pause_s)
    vad = VadSettings(threshold=args.vad_threshold) if args.vad else None
    t = Transcriber(source, args.device, chunking=chunking, engine=args.engine,
                    batch_size=args.batch_size or BATCH_SIZE, vad=vad)
    limits = CueLimits(args.max_chars, args.max_duration, args.max_gap)

    def show(result: dict) -> None:  # without --out each result goes to stdout as it is ready
        sys.stdout.write(stdout_text(result, formats, limits))
        sys.stdout.flush()
    results, errors = transcribe_files(args.model, args.files, formats=formats, out_dir=args.out,
                                       progress=not args.no_progress, transcriber=t, limits=limits,
                                       on_result=show if args.out is None else None)
    if args.out is not None:
        print(f"{len(results)} file(s) transcribed -> {args.out}", file=sys.stderr)
    if errors:
        print(f"{len(errors)} of {len(results) + len(errors)} file(s) could not be transcribed:",
              file=sys.stderr)
        for msg in errors.values():
            print(f"  {msg}", file=sys.stderr)
    if not results:
        return 1
    return 3 if errors else 0


def cmd_stream(args, given: dict | None = None) -> int:
    """--stream: partial results as the audio arrives (a file, or raw 16-bit PCM on stdin as
    '-'), then the final text; unidirectional models only. It decodes greedily with the PyTorch
    network on --device and prints text: given (flag -> value, the flags not at their default)
    holding any other flag is refused, naming it (exit 2)."""
    import json
    from asr import load
    from asr.streaming import stream_file, stream_pcm
    honoured = {"--stream", "--chunk-ms", "--rate", "--min-pause-s", "--device", "--no-progress"}
    refused = sorted(f for f, v in (given or {}).items()
                     if f not in honoured and not (f == "--decoder" and v == "greedy"))
    if refused:
        print(f"error: {', '.join(refused)}: not available with --stream (greedy decoding with the "
              "PyTorch network, text on stdout)", file=sys.stderr)
        return 2
    model = load(args.model, device=args.device, decoder="greedy")
    rec = model.stream(chunk_ms=args.chunk_ms, min_pause_s=args.min_pause_s)
    for f in args.files:
        if f == "-":
            for result in stream_pcm(rec, sys.stdin.buffer, args.rate, args.chunk_ms):
                _print_stream(result)
            continue
        final, stats = stream_file(rec, f, args.chunk_ms, on_partial=_print_stream)
        print(f"{f}\t{final['text']}", flush=True)
        print(json.dumps({"file": f, **stats}), file=sys.stderr)
    return 0


def _print_stream(result: dict) -> None:
    if result.get("final"):
        print(result["text"], flush=True)
    else:
        print(f"... {result['text']}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- asr bundle / asr export

def cmd_bundle(args) -> int:
    from asr.source import model_source
    # best.pt named on the command line is required; by default a run without one gives last.pt
    source = model_source(args.run, which=args.checkpoint or "best", fallback=args.checkpoint is None)
    index = source.save(args.out, lm_dir=args.lm)
    size = sum(f["bytes"] for f in index["files"].values())
    print(f"bundle {args.out}: {len(index['files'])} files, {size / 1e6:.1f} MB "
          f"({', '.join(index['files'])})")
    return 0


def cmd_export(args) -> int:
    from asr.bundle import export_bundle
    for path in export_bundle(args.bundle, args.format, int8=args.int8):
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


# ---------------------------------------------------------------- registration

def _transcribe_parser(sub) -> None:
    tuned = "the model's tuned value (decode.yaml), else DecodeConfig's"
    p = sub.add_parser("transcribe", help="transcribe audio files or folders (txt, json, srt, vtt, tsv, ctm)",
                       description="Transcribe audio or video files and folders. A file that cannot be "
                                   "transcribed is named on stderr and the others are still transcribed.",
                       epilog="exit status: 0 all transcribed, 3 some failed (named on stderr), "
                              "1 all failed, 2 usage error")
    p.add_argument("model", help="bundle (asr bundle), run folder or checkpoint file")
    p.add_argument("files", nargs="+", help="audio or video files or folders (any rate/channels; wav, "
                                             "flac, mp3, m4a, opus, webm, mp4, mkv, ...); '-' with --stream: raw PCM on stdin")
    p.add_argument("--decoder", help="greedy, beam, beam_lm or a registered decoder (default: "
                                      "beam_lm when the model has an LM or --lm is given, else greedy)")
    p.add_argument("--lm", help="LM folder (lm.bin + lexicon.txt, from asr lm build) or a KenLM file "
                                "(default: the bundle's or run's LM, if any)")
    p.add_argument("--lexicon", help="lexicon file (default: lexicon.txt beside the LM)")
    p.add_argument("--lexicon-mode", choices=["auto", "on", "off"],
                   help=f"lexicon-constrained search; auto: on for beam_lm, off for beam (default: {tuned})")
    p.add_argument("--lm-weight", type=float, help=f"LM weight (beam_lm; default: {tuned})")
    p.add_argument("--word-score", type=float, help=f"score added per word (beam, beam_lm; default: {tuned})")
    p.add_argument("--beam-size", type=int, help=f"hypotheses kept per frame (beam, beam_lm; default: {tuned})")
    p.add_argument("--hotword", action="append", default=[],
                   help="word or phrase to favour (repeatable; default: none beyond the model's)")
    p.add_argument("--hotwords", help="file of words/phrases to favour, one a line (default: none)")
    p.add_argument("--hotword-weight", type=float,
                   help="bonus per matching word (default: the model's tuned value, else 3)")
    p.add_argument("--format", default="txt",
                   help="txt, json, srt, vtt, tsv, ctm or several: txt,srt (default: %(default)s)")
    p.add_argument("--max-chars", type=int, default=42,
                   help="longest subtitle/tsv cue in characters (default: %(default)s)")
    p.add_argument("--max-duration", type=float, default=6.0,
                   help="longest subtitle/tsv cue in seconds (default: %(default)s)")
    p.add_argument("--max-gap", type=float, default=1.0,
                   help="a longer pause (s) starts a new subtitle/tsv cue (default: %(default)s)")
    p.add_argument("--engine", default="torch", choices=["torch", "onnx", "onnx-int8", "torchscript"],
                   help="the network: PyTorch, or a form exported into the bundle by asr export "
                        "(default: %(default)s)")
    p.add_argument("--batch-size", type=int,
                   help="windows run through the network together (default: Transcriber's BATCH_SIZE, 16)")
    p.add_argument("--stream", action="store_true",
                   help="streaming recognition (unidirectional models): partial results on stderr; greedy "
                        "decoding with the PyTorch network, so flags for other decoders, engines, "
                        "outputs, windows or VAD are refused")
    p.add_argument("--chunk-ms", type=int, default=200,
                   help="--stream: audio per step in ms (default: %(default)s)")
    p.add_argument("--rate", type=int, default=16000,
                   help="--stream from stdin: PCM sample rate in Hz (default: %(default)s)")
    p.add_argument("--out", help="folder for <name>.<format> files, made if missing (default: stdout); "
                                 "files whose stems collide keep their extension: a.wav.txt, a.flac.txt")
    p.add_argument("--chunk-s", type=float, default=30.0,
                   help="window length for long files in seconds (default: %(default)s)")
    p.add_argument("--overlap-s", type=float, default=4.0,
                   help="overlap of neighbouring windows in seconds (default: %(default)s)")
    p.add_argument("--min-pause-s", type=float, default=0.4,
                   help="a pause this long (s) splits a window into separately decoded segments "
                        "(0: never; default: %(default)s)")
    p.add_argument("--vad", action="store_true",
                   help="voice-activity detection (silero-vad): decode only the speech, skip silence and music "
                        "(default: off)")
    p.add_argument("--vad-threshold", type=float, default=0.5,
                   help="--vad: speech probability threshold (default: %(default)s)")
    p.add_argument("--device", default="auto",
                   help="auto (CUDA when there is one), cpu or cuda (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (default: progress bars on stderr)")
    p.set_defaults(func=cmd_transcribe)


def add_commands(sub, stage) -> None:
    """Register decoding subcommands on the `asr` parser (stage() adds --config/overrides)."""
    stage("decode", cmd_decode, "decode the test splits into hyp.jsonl (decode.decoder=greedy|beam|beam_lm)")
    b = sub.add_parser("bundle", help="one self-contained folder: weights, units, LM, tuned settings, model card")
    b.add_argument("run", help="run folder (train.exp_dir)")
    b.add_argument("out", help="bundle folder to write (a bundle already there is replaced whole)")
    b.add_argument("--checkpoint", help="which checkpoint: best, last, avg-last5, ... (default best, "
                                        "or last with a warning when the run has no best.pt)")
    b.add_argument("--lm", help="LM folder (default: the run's)")
    b.set_defaults(func=cmd_bundle)
    e = sub.add_parser("export", help="export a bundle's network to ONNX or TorchScript (into the bundle)")
    e.add_argument("bundle", help="bundle folder (asr bundle)")
    e.add_argument("--format", required=True, choices=["onnx", "torchscript"],
                   help="onnx: model.onnx for onnxruntime (--engine onnx); torchscript: model.ts (--engine torchscript)")
    e.add_argument("--int8", action="store_true", help="also an int8 ONNX model (dynamic quantisation)")
    e.set_defaults(func=cmd_export)
    lm = sub.add_parser("lm", help="language models (asr lm build)")
    lm_sub = lm.add_subparsers(dest="lm_command", required=True)
    b = lm_sub.add_parser("build", help="KenLM word n-gram (ARPA + binary) and lexicon from lm.text")
    b.add_argument("--config", help="recipe YAML (lm section)")
    b.add_argument("--text", help="training text (default lm.text or <data.root>/manifests/train_text.txt)")
    b.add_argument("--out", help="output folder (default lm.dir or <data.root>/lm)")
    b.add_argument("overrides", nargs="*", help="section.key=value overrides (lm.order=3 ...)")
    b.set_defaults(func=cmd_lm_build)
    i = lm_sub.add_parser("install-tools", help="build KenLM's lmplz and build_binary (once per user)")
    i.add_argument("--prefix", help="folder for the programs (default ~/.cache/asr-ctc/kenlm-<version>/bin)")
    i.add_argument("--jobs", type=int, default=2, help="parallel compile jobs (default 2)")
    i.set_defaults(func=cmd_lm_install_tools)
    t = stage("tune-lm", cmd_tune_lm, "search LM weight / word score on dev; writes <exp_dir>/decode.yaml")
    t.add_argument("--method", choices=["grid", "random"], default="grid")
    t.add_argument("--trials", type=int, default=20, help="random search: number of trials")
    t.add_argument("--lm-weights", default="0.25,0.5,0.75,1,1.5,2", help="grid values (random: range)")
    t.add_argument("--word-scores", default="-3,-2,-1,0,1", help="grid values (random: range)")
    t.add_argument("--split", help="split to tune on (default data.dev_split)")
    t.add_argument("--decoder", default="beam_lm",
                   help="the decoder whose lm_weight / word_score are tuned: beam_lm, or one added "
                        "with register_decoder that reads them from its DecodeConfig (default: %(default)s)")
    t.add_argument("--seed", type=int, default=0)
    _transcribe_parser(sub)
