"""Draw the example pictures of the docs: docs/pictures/utterance.png and training.png.

    .venv/bin/python docs/pictures/make_pictures.py
        trains the tiny tone-speech model of the tests (tests/conftest.py: a tone per
        character) in a temporary folder (a few minutes on a CPU) and draws its pictures
    .venv/bin/python docs/pictures/make_pictures.py --run exp/builtin/run1 \\
            --manifest data/builtin/manifests/test.jsonl [--id UTT_ID]
        draws them from a real run (default utterance: the manifest's first)

It runs what `asr plot utterances` and `asr plot training` run (asr.scoring.pictures).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def tone_run(root: Path) -> tuple[Path, Path]:
    """The tests' tone corpus and tone model (as conftest.tone_run), made under root:
    (run folder, test manifest)."""
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import tone_model_config, write_tone_splits

    from asr.train import Trainer
    write_tone_splits(root)
    Trainer(tone_model_config(root, log_every=10)).train()
    return root / "exp", root / "manifests" / "test.jsonl"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="run folder (default: train the tone model)")
    p.add_argument("--manifest", help="manifest of the utterance (with --run)")
    p.add_argument("--id", help="utterance id (default: the manifest's longest of the first 8)")
    p.add_argument("--out", default=str(HERE), help="folder for the PNGs (default docs/pictures)")
    p.add_argument("--work", help="train the tone model here and keep it (default: a temporary folder)")
    args = p.parse_args()
    from asr.data.manifest import read_manifest
    from asr.plots.training import plot_training
    from asr.scoring.pictures import load_model, plot_utterance, utterance_view
    with tempfile.TemporaryDirectory() as tmp:
        if args.run:
            if not args.manifest:
                p.error("--run needs --manifest")
            run, manifest = Path(args.run), Path(args.manifest)
        else:
            done = args.work and (Path(args.work) / "exp" / "checkpoints" / "best.pt").is_file()
            root = Path(args.work or tmp)
            run, manifest = ((root / "exp", root / "manifests" / "test.jsonl") if done
                             else tone_run(root))
        entries = list(read_manifest(manifest))
        entry = (next(e for e in entries if e["id"] == args.id) if args.id
                 else max(entries[:8], key=lambda e: len(e.get("text", ""))))
        out = Path(args.out)
        print(plot_utterance(utterance_view(load_model(run), entry), out / "utterance.png"))
        print(plot_training(run, out / "training.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
