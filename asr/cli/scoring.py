"""`asr score`, `asr compare`, `asr benchmark`: scoring commands of the `asr` tool.

    asr score REF HYP [--out DIR] [--normalize lower,punct,numbers] [--mapping FILE] ...
    asr score --ref REF --hyp HYP                  (the same)
    asr score --config recipes/builtin/config.yaml (every test split of a recipe's decodes)
    asr compare REF HYP_A HYP_B [--out DIR] ...    (is B better than A? CI + two paired tests)
    asr benchmark --config C [--benchmark FILE]    (decode + score every listed system)
"""

from __future__ import annotations

import sys
from pathlib import Path

from asr.config import load_config
from asr.scoring.readers import FORMATS


def _config(args):
    return load_config(args.config, args.overrides)


def _add_scoring_options(p, compare: bool = False) -> None:
    g = p.add_argument_group("input")
    g.add_argument("--format", choices=FORMATS,
                   help="format of all inputs (default: from the extension, else sniffed)")
    g.add_argument("--ref-format", choices=FORMATS, help="format of REF only")
    g.add_argument("--hyp-format", choices=FORMATS, help="format of the hypotheses")
    g.add_argument("--utt2spk", help="Kaldi utt2spk file: speakers of the reference utterances")
    g.add_argument("--subset-key", default="subset", help="manifest key naming an utterance's subset")
    g = p.add_argument_group("normalisation (applied to reference and hypothesis alike)")
    g.add_argument("--normalize", "--normalise", default="none", metavar="OPTS",
                   help="comma-separated: lower, punct, numbers, nonwords, all, none (default "
                        "none); or whisper (Whisper's English normaliser) / whisper_basic (its "
                        "multilingual one), from the whisper-normalizer package")
    g.add_argument("--mapping", help="word mapping file: 'FROM TO...' per line, or 'FROM PHRASE<TAB>TO'")
    g.add_argument("--by-characters", action="store_true", default=None,
                   help="score characters, not words (scripts without spaces: zh, ja, th; the "
                        "default with --config when data.language is one)")
    g = p.add_argument_group("confidence intervals")
    g.add_argument("--by-speaker", "--speakers", dest="by_speaker", action="store_true",
                   help="bootstrap resamples speakers (whole), not utterances")
    g.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    g.add_argument("--seed", type=int, default=0, help="bootstrap random seed")
    if compare:
        g.add_argument("--mapsswe-segments", choices=("sclite", "utterance"), default="sclite",
                       help="MAPSSWE segments: sclite's (cut at 2+ words both systems get right) "
                            "or whole utterances")
        g.add_argument("--names", default="A,B", help="labels of the two systems (default A,B)")
    p.add_argument("--out", help="folder for the report (markdown, HTML, plots, alignments, JSON)")


def _score_options(args) -> dict:
    """score()'s normalisation and bootstrap keyword arguments from the options."""
    from asr.text.normalize import Normalizer
    options = {"normalizer": Normalizer.parse(args.normalize, args.mapping),
               "by_speaker": args.by_speaker, "n_boot": args.n_boot, "seed": args.seed}
    if args.by_characters:
        options["by_characters"] = True
    return options


def _split_positionals(args, n_files: int, names: str):
    """With --config the positionals are overrides; otherwise they are the input files."""
    if args.config:
        return None
    files = list(args.overrides)
    if any("=" in f and not Path(f).exists() for f in files):
        raise ValueError("section.key=value overrides need --config")
    if len(files) != n_files:
        raise ValueError(f"expected {names} (got {len(files)} file argument(s))")
    return files


def cmd_score(args) -> int:
    if args.ref or args.hyp:
        if not (args.ref and args.hyp):
            print("error: --ref and --hyp go together", file=sys.stderr)
            return 2
        if args.overrides:
            print("error: give REF HYP either as --ref/--hyp or as positional files, not both",
                  file=sys.stderr)
            return 2
        files = [args.ref, args.hyp]
    elif not args.config:
        files = _split_positionals(args, 2, "REF HYP")
    else:
        files = None
    if files:
        return _score_ref_hyp(args, *files)
    return _score_recipe(args)


def _score_ref_hyp(args, ref: str, hyp: str) -> int:
    from asr.scoring.score import score_files
    from asr.scoring.tables import summary_text
    s = score_files(ref, hyp, fmt=args.format, ref_fmt=args.ref_format, hyp_fmt=args.hyp_format,
                    utt2spk=args.utt2spk, subset_key=args.subset_key, **_score_options(args))
    print(summary_text(s))
    if args.out:
        from asr.scoring.report import write_all
        paths = write_all(args.out, s, title="Scoring report",
                          sources={"reference": ref, "hypothesis": hyp}, plots=not args.no_plots)
        print(f"report: {paths['markdown']}, {paths['html']} (alignments: {paths['alignments']})")
    return 0


def _score_recipe(args) -> int:
    from asr.scoring.decodes import score_decodes
    from asr.scoring.tables import results_table
    cfg = _config(args)
    rows, report = score_decodes(cfg, args.out, fmt=args.format, utt2spk=args.utt2spk,
                                 subset_key=args.subset_key, plots=not args.no_plots,
                                 **_score_options(args))
    print(results_table(rows))
    print(f"report: {report} (per split and decoder: <exp_dir>/decode/<split>/<decoder>/report.html)")
    return 0


def cmd_compare(args) -> int:
    from asr.scoring.compare import compare_files
    names = [n.strip() for n in args.names.split(",")]
    if len(names) != 2 or not all(names):
        raise ValueError("--names takes two labels, e.g. --names baseline,new")
    c = compare_files(args.ref, args.hyp_a, args.hyp_b, names, fmt=args.format,
                      ref_fmt=args.ref_format, hyp_fmt=args.hyp_format, utt2spk=args.utt2spk,
                      subset_key=args.subset_key, segments=args.mapsswe_segments,
                      **_score_options(args))
    print(c.header())
    print(c.text())
    if args.out:
        md, js = c.write(args.out)
        print(f"written: {md}, {js}")
    return 0


def cmd_benchmark(args) -> int:
    from asr.scoring.benchmark import load_benchmark, report_paths, run_benchmark
    from asr.scoring.tables import results_table
    cfg = _config(args)
    if args.benchmark:
        spec = load_benchmark(args.benchmark, cfg, required=True)
    else:
        spec = load_benchmark(Path(args.config).parent / "benchmark.yaml" if args.config else None, cfg)
    for key in ("normalize", "mapping", "n_boot", "by_speaker"):
        value = getattr(args, key)
        if value is not None:
            spec[key] = value
    rows = run_benchmark(cfg, spec, device=args.device)
    print(results_table(rows))
    print("written: " + ", ".join(map(str, report_paths(cfg.train.exp_dir))))
    return 0


def add_commands(sub, stage) -> None:
    """Register the scoring subcommands on the `asr` parser (stage() adds --config/overrides)."""
    p = sub.add_parser(
        "score", help="WER/CER/SER with CIs and error analysis of REF HYP files, or of a recipe",
        description="Score REF HYP (JSONL, Kaldi text or sclite trn), or with --config the decodes "
                    "of every test split of a recipe. Prints WER ± 95% bootstrap CI, CER, SER, "
                    "S/D/I and top confusions; --out DIR writes report.md/.html, plots, alignments.")
    p.add_argument("--config", help="recipe YAML: score exp_dir/decode/<split>/<decoder>/hyp.jsonl")
    p.add_argument("overrides", nargs="*", metavar="REF HYP | section.key=value",
                   help="the reference and hypothesis files; with --config, config overrides")
    p.add_argument("--ref", help="reference file (same as the first positional)")
    p.add_argument("--hyp", help="hypothesis file (same as the second positional)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    _add_scoring_options(p)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser(
        "compare", help="is HYP_B better than HYP_A? WER difference with CI, paired tests",
        description="Score two systems on the same reference: difference in WER with its 95% "
                    "bootstrap CI, paired bootstrap and sclite's MAPSSWE tests, and a verdict.")
    p.add_argument("ref", help="reference file")
    p.add_argument("hyp_a", help="hypotheses of system A (the baseline)")
    p.add_argument("hyp_b", help="hypotheses of system B")
    _add_scoring_options(p, compare=True)
    p.set_defaults(func=cmd_compare)

    p = stage("benchmark", cmd_benchmark,
              "decode and score every decoder/checkpoint of benchmark.yaml on every test split")
    p.add_argument("--benchmark", help="benchmark YAML (default: benchmark.yaml beside --config)")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (default: train.device)")
    p.add_argument("--normalize", "--normalise", default=None, help="as in `asr score`")
    p.add_argument("--mapping", default=None, help="as in `asr score`")
    p.add_argument("--n-boot", type=int, default=None, help="bootstrap resamples (default 1000)")
    p.add_argument("--by-speaker", action="store_true", default=None,
                   help="bootstrap over speakers instead of utterances")
