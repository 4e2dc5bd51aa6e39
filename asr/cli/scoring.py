"""`asr score`, `asr compare`, `asr benchmark`: scoring commands of the `asr` tool.

    asr score REF HYP [--out DIR] [--normalize lower,punct,numbers] [--mapping FILE] ...
    asr score --ref REF --hyp HYP                  (the same)
    asr score --config recipes/builtin/config.yaml (every test split of a recipe's decodes)
    asr compare REF HYP_A HYP_B [--out DIR] ...    (is B better than A? CI + two paired tests)
    asr benchmark --config C [--benchmark FILE]    (decode + score every listed system)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from asr.config import load_config


def _config(args):
    return load_config(args.config, args.overrides)


def _add_scoring_options(p, compare: bool = False) -> None:
    g = p.add_argument_group("input")
    g.add_argument("--format", choices=("jsonl", "kaldi", "trn"),
                   help="format of all inputs (default: from the extension, else sniffed)")
    g.add_argument("--ref-format", choices=("jsonl", "kaldi", "trn"), help="format of REF only")
    g.add_argument("--hyp-format", choices=("jsonl", "kaldi", "trn"), help="format of the hypotheses")
    g.add_argument("--utt2spk", help="Kaldi utt2spk file: speakers of the reference utterances")
    g.add_argument("--subset-key", default="subset", help="manifest key naming an utterance's subset")
    g = p.add_argument_group("normalisation (applied to reference and hypothesis alike)")
    g.add_argument("--normalize", "--normalise", default="none", metavar="OPTS",
                   help="comma-separated: lower, punct, numbers, nonwords, all, none (default none)")
    g.add_argument("--mapping", help="word mapping file: 'FROM TO...' per line, or 'FROM PHRASE<TAB>TO'")
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


def _normalizer(args):
    from asr.text.normalize import Normalizer
    return Normalizer.parse(args.normalize, args.mapping)


def _score_pair(args, ref_path, hyp_path, ref=None):
    from asr.scoring.score import read_transcripts, score
    if ref is None:
        ref = read_transcripts(ref_path, args.ref_format or args.format, args.subset_key, args.utt2spk)
    hyp = read_transcripts(hyp_path, args.hyp_format or args.format, args.subset_key)
    s = score(ref.texts, hyp.texts, normalizer=_normalizer(args), speakers=ref.speakers or None,
              subsets=ref.subsets or None, by_speaker=args.by_speaker, n_boot=args.n_boot,
              seed=args.seed)
    return ref, hyp, s


def _print_summary(s: dict, file=None) -> None:
    from asr.scoring.score import fmt_wer
    file = file or sys.stdout
    ci = s["ci"]
    print(f"WER {fmt_wer(s)} % (95% CI [{s['wer_lo']:.2f}, {s['wer_hi']:.2f}], {ci['n_boot']} "
          f"bootstrap resamples of {ci['units']} {ci['unit']}s)", file=file)
    print(f"    {s['sub']} sub, {s['del']} del, {s['ins']} ins of {s['words']} reference words; "
          f"CER {s['cer']:.2f} %; SER {s['ser']:.1f} % ({s['sent_errors']} of {s['utterances']} "
          f"utterances)", file=file)
    print(f"    normalisation: {s['normalization']}; missing hypotheses (scored as empty): "
          f"{s['missing']}; hypotheses without a reference (ignored): {s['extra']}", file=file)
    c = s["confusions"]
    for name, items in (("substitutions", [f"{a}→{b} ({k})" for a, b, k in c["sub"][:5]]),
                        ("deletions", [f"{a} ({k})" for a, k in c["del"][:5]]),
                        ("insertions", [f"{a} ({k})" for a, k in c["ins"][:5]])):
        if items:
            print(f"    top {name}: {', '.join(items)}", file=file)


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
    from asr.scoring.score import results_table, score_files, write_report
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
        ref, hyp, s = _score_pair(args, files[0], files[1])
        _print_summary(s)
        if args.out:
            from asr.scoring.report import write_all
            paths = write_all(args.out, s, title="Scoring report",
                              sources={"reference": files[0], "hypothesis": files[1]},
                              plots=not args.no_plots)
            print(f"report: {paths['markdown']}, {paths['html']} (alignments: {paths['alignments']})")
        return 0
    cfg = _config(args)
    from asr.text.normalize import Normalizer
    norm = Normalizer.parse(args.normalize, args.mapping)
    rows = []
    for split in cfg.data.test_splits:
        for decoder in _decoders_of(cfg, split):
            hyp = Path(cfg.train.exp_dir) / f"decode_{split}_{decoder}" / "hyp.jsonl"
            ref = Path(cfg.data.root) / "manifests" / f"{split}.jsonl"
            s = score_files(ref, hyp, fmt=args.format, utt2spk=args.utt2spk,
                            subset_key=args.subset_key, normalizer=norm, by_speaker=args.by_speaker,
                            n_boot=args.n_boot, seed=args.seed)
            rows.append({"split": split, "decoder": decoder, **s})
            from asr.scoring.report import write_all
            write_all(hyp.parent, s, title=f"{split} ({decoder})",
                      sources={"reference": ref, "hypothesis": hyp}, plots=not args.no_plots)
    report = Path(args.out or cfg.train.exp_dir) / "report.md"
    write_report(report, rows)
    print(results_table(rows))
    print(f"report: {report} (per split and decoder: <exp_dir>/decode_<split>_<decoder>/report.html)")
    return 0


def _decoders_of(cfg, split: str) -> list[str]:
    """The configured decoder, then every other decoder already decoded for this split, so the
    results table has one row per decoder."""
    order = ["greedy", "beam", "beam_lm"]
    longer = [s for s in cfg.data.test_splits if s != split and s.startswith(split + "_")]
    found = [p.name[len(f"decode_{split}_"):] for p in Path(cfg.train.exp_dir).glob(f"decode_{split}_*")
             if (p / "hyp.jsonl").exists()
             and not any(p.name.startswith(f"decode_{other}_") for other in longer)]
    others = sorted(set(found) - {cfg.decode.decoder}, key=lambda d: (order.index(d) if d in order else 9, d))
    return sorted([cfg.decode.decoder] + others,
                  key=lambda d: (order.index(d) if d in order else 9, d))


def _p(p: float, n_boot: int | None = None) -> str:
    """'p = 0.0123', or 'p < 0.001' for a bootstrap p-value below its resolution 1/n_boot."""
    if n_boot and p == 0.0:
        return f"p < {1 / n_boot:.2g}"
    return f"p = {p:.4f}" if p >= 1e-4 else f"p = {p:.1e}"


def compare_results(sa: dict, sb: dict, speakers=None, by_speaker: bool = False,
                    n_boot: int = 1000, seed: int = 0, segments: str = "sclite") -> dict:
    """Difference B - A with its bootstrap CI, paired bootstrap and MAPSSWE tests, a verdict."""
    import numpy as np

    from asr.scoring.score import mapsswe_segments
    from asr.scoring.stats import ALPHA, mapsswe, paired_bootstrap, verdict
    ea, eb = sa["_arrays"]["errors"], sb["_arrays"]["errors"]
    words = sa["_arrays"]["words"]
    pb = paired_bootstrap(ea, eb, words, groups=speakers if by_speaker else None,
                          n_boot=n_boot, seed=seed)
    za, zb = mapsswe_segments(sa, sb, segments)
    mp = {**mapsswe(za, zb), "segmentation": segments}
    v_pb = verdict(pb["delta"], pb["p_value"])
    v_mp = verdict(-mp["mean_diff"], mp["p_value"])
    if v_pb == v_mp:
        overall = v_pb
    else:
        overall = "not distinguishable"
    return {"wer_a": sa["wer"], "wer_b": sb["wer"], "delta": pb["delta"],
            "relative": (100.0 * pb["delta"] / sa["wer"]) if sa["wer"] else None,
            "paired_bootstrap": {**pb, "verdict": v_pb}, "mapsswe": {**mp, "verdict": v_mp},
            "verdict": overall, "tests_agree": v_pb == v_mp, "alpha": ALPHA,
            "utterances_b_better": int(np.sum(eb < ea)), "utterances_b_worse": int(np.sum(eb > ea)),
            "utterances_same": int(np.sum(eb == ea))}


def comparison_text(c: dict, sa: dict, sb: dict, names=("A", "B"), files=("", "")) -> str:
    from asr.scoring.score import fmt_wer
    a, b = names
    pb, mp = c["paired_bootstrap"], c["mapsswe"]
    say = {"better": f"{b} is better than {a}", "worse": f"{b} is worse than {a}",
           "not distinguishable": f"{a} and {b} are not distinguishable"}
    rel = f", {c['relative']:+.1f} % relative" if c["relative"] is not None else ""
    w = max(len(a), len(b))
    lines = [f"{a.ljust(w)}  WER {fmt_wer(sa)} %  [{sa['wer_lo']:.2f}, {sa['wer_hi']:.2f}]  {files[0]}",
             f"{b.ljust(w)}  WER {fmt_wer(sb)} %  [{sb['wer_lo']:.2f}, {sb['wer_hi']:.2f}]  {files[1]}",
             f"{b} - {a}: {c['delta']:+.2f} WER points (95% CI [{pb['lo']:+.2f}, {pb['hi']:+.2f}]{rel}); "
             f"{b} better on {c['utterances_b_better']} utterances, worse on {c['utterances_b_worse']}, "
             f"same on {c['utterances_same']}",
             f"paired bootstrap ({pb['n_boot']} resamples of {pb['units']} {pb['unit']}s): "
             f"{_p(pb['p_value'], pb['n_boot'])} -> {say[pb['verdict']]} at p<{c['alpha']}",
             f"MAPSSWE ({mp['segmentation']} segments: {mp['segments']}, W = {mp['w']:+.2f}): "
             f"{_p(mp['p_value'])} -> {say[mp['verdict']]} at p<{c['alpha']}"]
    if c["tests_agree"] and c["verdict"] != "not distinguishable":
        lines.append(f"verdict: {say[c['verdict']]} (p<{c['alpha']}, both tests agree)")
    elif c["tests_agree"]:
        lines.append(f"verdict: {say[c['verdict']]} (neither test finds a difference at p<{c['alpha']})")
    else:
        lines.append(f"verdict: {say['not distinguishable']} (the two tests disagree; "
                     "more data would settle it)")
    return "\n".join(lines)


def cmd_compare(args) -> int:
    from asr.scoring.score import read_transcripts, summary
    ref_path, hyp_a, hyp_b = args.ref, args.hyp_a, args.hyp_b
    names = [n.strip() for n in args.names.split(",")]
    if len(names) != 2 or not all(names):
        raise ValueError("--names takes two labels, e.g. --names baseline,new")
    ref = read_transcripts(ref_path, args.ref_format or args.format, args.subset_key, args.utt2spk)
    _, _, sa = _score_pair(args, ref_path, hyp_a, ref=ref)
    _, _, sb = _score_pair(args, ref_path, hyp_b, ref=ref)
    c = compare_results(sa, sb, speakers=sa["_speakers"], by_speaker=args.by_speaker,
                        n_boot=args.n_boot, seed=args.seed, segments=args.mapsswe_segments)
    text = comparison_text(c, sa, sb, names, (hyp_a, hyp_b))
    head = (f"reference: {ref_path} ({sa['utterances']} utterances, {sa['words']} words); "
            f"normalisation: {sa['normalization']}")
    print(head)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.md").write_text(f"# Comparison: {names[1]} against {names[0]}\n\n{head}\n\n"
                                        f"```\n{text}\n```\n", encoding="utf-8")
        (out / "compare.json").write_text(json.dumps(
            {"reference": str(ref_path), "a": {"name": names[0], "hyp": str(hyp_a), **summary(sa)},
             "b": {"name": names[1], "hyp": str(hyp_b), **summary(sb)}, **c},
            indent=1, ensure_ascii=False), encoding="utf-8")
        print(f"written: {out / 'compare.md'}, {out / 'compare.json'}")
    return 0


def cmd_benchmark(args) -> int:
    from asr.scoring.benchmark import load_benchmark, run_benchmark
    cfg = _config(args)
    if args.benchmark:
        spec = load_benchmark(args.benchmark, cfg, required=True)
    else:
        spec = load_benchmark(Path(args.config).parent / "benchmark.yaml" if args.config else None, cfg)
    for key in ("normalize", "mapping", "n_boot", "by_speaker"):
        value = getattr(args, key)
        if value is not None:
            spec[key] = value
    run_benchmark(cfg, spec, device=args.device)
    return 0


def add_commands(sub, stage) -> None:
    """Register the scoring subcommands on the `asr` parser (stage() adds --config/overrides)."""
    p = sub.add_parser(
        "score", help="WER/CER/SER with CIs and error analysis of REF HYP files, or of a recipe",
        description="Score REF HYP (JSONL, Kaldi text or sclite trn), or with --config the decodes "
                    "of every test split of a recipe. Prints WER ± 95% bootstrap CI, CER, SER, "
                    "S/D/I and top confusions; --out DIR writes report.md/.html, plots, alignments.")
    p.add_argument("--config", help="recipe YAML: score exp_dir/decode_<split>_<decoder>/hyp.jsonl")
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
