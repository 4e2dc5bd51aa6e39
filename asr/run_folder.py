"""The layout of a run folder (``train.exp_dir``), spelled once. Everything that reads or
writes a run asks a RunFolder for the path:

    exp_dir/
      config.yaml                  the run's config, paths absolute (asr train)
      decode.yaml                  the decode settings asr tune-lm found best
      train.log, metrics.jsonl, tensorboard/
      checkpoints/                 best.pt, last.pt, epoch-<n>.pt
      decode/<split>/<decoder>/    hyp.jsonl (asr decode) and its report (asr score)
      report.md                    every decode of the run, scored

Runs decoded before 2026-12-07 wrote ``decode_<split>_<decoder>/``: where the new folder has no
hypotheses and the old one has, the old one is read (and scored in place).
"""

from __future__ import annotations

from pathlib import Path

HYPS = "hyp.jsonl"


class RunFolder:
    def __init__(self, exp_dir: str | Path):
        self.root = Path(exp_dir)

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def tuned(self) -> Path:
        return self.root / "decode.yaml"

    @property
    def log(self) -> Path:
        return self.root / "train.log"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, which: str) -> Path:
        """checkpoints/<which>.pt: "best", "last" or "epoch-<n>"."""
        return self.checkpoints / f"{which}.pt"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    def decode_dir(self, split: str, decoder: str) -> Path:
        """Where the hypotheses of `split` by `decoder` are: decode/<split>/<decoder>/, or an
        older run's decode_<split>_<decoder>/ when only that one has them."""
        new = self.root / "decode" / split / decoder
        old = self.root / f"decode_{split}_{decoder}"
        return old if not (new / HYPS).exists() and (old / HYPS).exists() else new

    def hyps(self, split: str, decoder: str) -> Path:
        """The hypotheses to read (decode_dir's)."""
        return self.decode_dir(split, decoder) / HYPS

    def new_hyps(self, split: str, decoder: str) -> Path:
        """Where asr decode writes: always decode/<split>/<decoder>/hyp.jsonl."""
        return self.root / "decode" / split / decoder / HYPS

    def decoders(self, split: str, splits: list[str] = ()) -> list[str]:
        """The decoders with hypotheses for `split`, in either layout, unsorted. `splits`: the
        run's other split names (an old decode_<split>_* also matches <split>_other's folders)."""
        found = {p.parent.name for p in (self.root / "decode" / split).glob(f"*/{HYPS}")}
        longer = [s for s in splits if s != split and s.startswith(split + "_")]
        for p in self.root.glob(f"decode_{split}_*/{HYPS}"):
            name = p.parent.name
            if not any(name.startswith(f"decode_{other}_") for other in longer):
                found.add(name[len(f"decode_{split}_"):])
        return sorted(found)
