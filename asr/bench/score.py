"""Time scoring on synthetic data: `python -m asr.bench.score [--utts 100000] [--out DIR]`.

Writes a reference and a hypothesis JSONL file (random words, ~10% word errors, speakers and
subsets), then times each part of `asr score REF HYP`: reading, alignment + counts + bootstrap
CIs, and (with --out) the report files. Prints the figures; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from asr.utils import atomic_open


def make_pair(out_dir: Path, n: int, seed: int = 0, vocab: int = 5000) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = np.array(["".join(letters[rng.integers(0, 26, size=rng.integers(2, 9))]) for _ in range(vocab)])
    lengths = rng.integers(1, 25, size=n)
    ref_path, hyp_path = out_dir / "ref.jsonl", out_dir / "hyp.jsonl"
    with atomic_open(ref_path) as fr, atomic_open(hyp_path) as fh:
        for i, k in enumerate(lengths):
            ref = list(words[rng.integers(0, vocab, size=k)])
            hyp = [w if rng.random() > 0.08 else words[rng.integers(0, vocab)] for w in ref]
            if rng.random() < 0.1:
                del hyp[int(rng.integers(0, len(hyp)))]
            if rng.random() < 0.05:
                hyp.insert(int(rng.integers(0, len(hyp) + 1)), "uh")
            uid = f"spk{i % 200:03d}-utt{i:06d}"
            ref_text = " ".join(ref).capitalize() + (", ok." if i % 4 == 0 else ".")
            fr.write(json.dumps({"id": uid, "text": ref_text, "speaker": f"spk{i % 200:03d}",
                                 "subset": "clean" if i % 3 else "other"}) + "\n")
            fh.write(json.dumps({"id": uid, "text": " ".join(hyp)}) + "\n")
    return ref_path, hyp_path


_SENT_WORDS = ("the a their there to two too weather whether red read cat sat on mat dog ran "
               "fast home quiet quite night knight see sea write right four for by buy new knew "
               "river under bridge morning evening light house green old man woman child").split()
_CONFUSE = {"their": "there", "to": "two", "weather": "whether", "quiet": "quite", "write": "right",
            "four": "for", "knew": "new", "sea": "see", "night": "knight"}


def make_example(out_dir: str | Path, n: int = 400, seed: int = 1) -> dict[str, Path]:
    """A small reproducible example: ref.jsonl (cased, punctuated, speakers, subsets), ref.trn,
    and three systems' hypotheses: sys_a.jsonl (more errors), sys_b.jsonl (fewer) and
    sys_c.jsonl (made like sys_b, with a marginally lower error rate)."""
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spk_skill = {f"spk{k}": rng.uniform(0.5, 1.5) for k in range(8)}

    def noisy(words, rate):
        hyp = []
        for w in words:
            r = rng.random()
            if r < rate * 0.6:
                hyp.append(_CONFUSE.get(w) or str(rng.choice(_SENT_WORDS)))
            elif r < rate * 0.85:
                continue
            else:
                hyp.append(w)
                if r > 1 - rate * 0.15:
                    hyp.append(str(rng.choice(["uh", "the", "a"])))
        return " ".join(hyp)

    paths = {k: out / f for k, f in (("ref", "ref.jsonl"), ("trn", "ref.trn"), ("a", "sys_a.jsonl"),
                                     ("b", "sys_b.jsonl"), ("c", "sys_c.jsonl"))}
    with ExitStack() as stack:
        fr, ft, fa, fb, fc = (stack.enter_context(atomic_open(p)) for p in paths.values())
        for i in range(n):
            spk = f"spk{i % 8}"
            words = list(rng.choice(_SENT_WORDS, size=int(rng.integers(2, 30))))
            if i % 50 == 7:
                words = []  # a few empty references (silence)
            uid = f"{spk}-utt{i:04d}"
            text = (" ".join(words).capitalize() + ".") if words else ""
            fr.write(json.dumps({"id": uid, "text": text, "speaker": spk,
                                 "subset": "clean" if i % 3 else "noisy"}) + "\n")
            ft.write(f"{' '.join(words)} ({uid})\n")
            skill = spk_skill[spk] * (1.6 if i % 3 == 0 else 1.0)
            fa.write(json.dumps({"id": uid, "text": noisy(words, 0.16 * skill)}) + "\n")
            fb.write(json.dumps({"id": uid, "text": noisy(words, 0.12 * skill)}) + "\n")
            fc.write(json.dumps({"id": uid, "text": noisy(words, 0.115 * skill)}) + "\n")
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--utts", type=int, default=100_000)
    ap.add_argument("--normalize", default="all")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", help="also write the full report (md, html, plots, alignments) here")
    ap.add_argument("--make-example", metavar="DIR",
                    help="only write the small example of docs/scoring.md (ref.jsonl, ref.trn, "
                         "sys_a.jsonl, sys_b.jsonl) into DIR")
    args = ap.parse_args(argv)
    if args.make_example:
        for name, path in make_example(args.make_example).items():
            print(f"{name}: {path}")
        return 0
    from asr.scoring.readers import read_transcripts
    from asr.scoring.score import score
    from asr.text.normalize import Normalizer
    with tempfile.TemporaryDirectory() as tmp:
        ref_path, hyp_path = make_pair(Path(tmp), args.utts)
        t0 = time.perf_counter()
        ref, hyp = read_transcripts(ref_path), read_transcripts(hyp_path)
        t1 = time.perf_counter()
        s = score(ref.texts, hyp.texts, normalizer=Normalizer.parse(args.normalize),
                  speakers=ref.speakers, subsets=ref.subsets, n_boot=args.n_boot)
        t2 = time.perf_counter()
        print(f"{args.utts} utterances, {s['words']} words: read {t1 - t0:.2f} s, "
              f"normalise+align+count+{args.n_boot} bootstrap CIs {t2 - t1:.2f} s, "
              f"total {t2 - t0:.2f} s (WER {s['wer']:.2f} ± {s['wer_ci']:.2f} %)")
        if args.out:
            from asr.scoring.report import write_all
            write_all(args.out, s, title="synthetic benchmark")
            t3 = time.perf_counter()
            print(f"report files ({args.out}): {t3 - t2:.2f} s; end to end {t3 - t0:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
