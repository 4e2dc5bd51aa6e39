"""`asr plot`: pictures of utterances (spectrogram, posteriorgram, aligned words) and of training.

    asr plot utterances MODEL MANIFEST --ids ID1,ID2 [--out DIR]
    asr plot utterances MODEL MANIFEST --worst N --hyp HYP.jsonl [--out DIR]
    asr plot training RUN [--out FILE]

MODEL is a bundle, run folder or checkpoint. The library is asr.scoring.pictures.
"""

from __future__ import annotations


def cmd_plot_utterances(args) -> int:
    from asr.scoring.pictures import plot_utterances
    ids = [i for i in (args.ids or "").split(",") if i]
    if not ids and not (args.worst and args.hyp):
        raise ValueError("give --ids ID1,ID2 or --worst N with --hyp HYP.jsonl")
    paths = plot_utterances(args.model, args.manifest, args.out, ids=ids or None,
                            worst=args.worst, hyp=args.hyp, device=args.device)
    for uid, path in paths.items():
        print(f"{uid}\t{path}")
    return 0


def cmd_plot_training(args) -> int:
    from asr.plots.training import plot_training
    print(plot_training(args.run, args.out))
    return 0


def add_commands(sub, stage) -> None:
    p = sub.add_parser("plot", help="draw utterances (spectrogram, posteriorgram, aligned words) "
                                    "or a run's training curves as PNG")
    kinds = p.add_subparsers(dest="picture", required=True)
    u = kinds.add_parser("utterances", help="one PNG per utterance: log-mel spectrogram, CTC "
                                            "posteriorgram and the greedy words on one time axis")
    u.add_argument("model", metavar="RUN_OR_CHECKPOINT", help="bundle, run folder or checkpoint")
    u.add_argument("manifest", metavar="MANIFEST",
                   help="manifest (JSONL) holding the utterances and their texts")
    which = u.add_mutually_exclusive_group(required=True)
    which.add_argument("--ids", help="comma-separated utterance ids")
    which.add_argument("--worst", type=int, metavar="N",
                       help="the N utterances with most word errors in --hyp")
    u.add_argument("--hyp", help="hypotheses (hyp.jsonl of asr decode) ranked by --worst")
    u.add_argument("--out", default="pictures", help="folder for the PNGs (default ./pictures)")
    u.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    u.set_defaults(func=cmd_plot_utterances)
    t = kinds.add_parser("training", help="training curves of a run (metrics.jsonl, dev evals)")
    t.add_argument("run", help="run folder (exp/<recipe>/<run>)")
    t.add_argument("--out", help="PNG to write (default RUN/training.png)")
    t.set_defaults(func=cmd_plot_training)
