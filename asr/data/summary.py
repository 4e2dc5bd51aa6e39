"""The Summary that data preparation and ``asr validate`` both end with: usable utterances and
hours per split, and every rejected item with its reason (asr.data.checks names the reasons).
Its lines are returned (Summary.lines); the commands print them."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

from asr.utils import atomic_open

CONSOLE_LIMIT = 200  # rejected items printed on the console; all of them go to rejected.tsv


@dataclasses.dataclass
class Reject:
    split: str
    file: str
    kind: str
    detail: str
    where: str = ""  # manifest:line when validating a manifest

    def line(self) -> str:
        where = f"{self.where}: " if self.where and self.where != self.file else ""
        return f"{where}{self.file}: {self.kind} ({self.detail})" if self.detail else \
            f"{where}{self.file}: {self.kind}"


class Summary:
    """Usable utterances and hours per split, and every rejected item with its reason."""

    def __init__(self, title: str):
        self.title = title
        self.splits: dict[str, list] = {}  # split -> [utterances, seconds, rejected]
        self.rejects: list[Reject] = []
        self.notes: list[str] = []

    def _split(self, split: str) -> list:
        return self.splits.setdefault(split, [0, 0.0, 0])

    def ok(self, split: str, duration: float) -> None:
        s = self._split(split)
        s[0] += 1
        s[1] += duration

    def bad(self, split: str, file: str, kind: str, detail: str = "", where: str = "") -> None:
        self._split(split)[2] += 1
        self.rejects.append(Reject(split, str(file), kind, detail, where))

    def note(self, text: str) -> None:
        self.notes.append(text)

    @property
    def usable(self) -> int:
        return sum(s[0] for s in self.splits.values())

    def lines(self, limit: int = CONSOLE_LIMIT, rejects_file: str | Path | None = None) -> list[str]:
        out = [f"== {self.title} ==",
               f"{'split':<24}{'usable':>9}{'hours':>10}{'rejected':>10}"]
        for name, (n, sec, bad) in self.splits.items():
            out.append(f"{name:<24}{n:>9}{sec / 3600:>10.3f}{bad:>10}")
        total_sec = sum(s[1] for s in self.splits.values())
        out.append(f"{'total':<24}{self.usable:>9}{total_sec / 3600:>10.3f}{len(self.rejects):>10}")
        if self.rejects:
            kinds = Counter(r.kind for r in self.rejects)
            out.append("rejected: " + ", ".join(f"{n} {k}" for k, n in kinds.most_common()))
            for r in self.rejects[:limit]:
                out.append(f"  [{r.split}] {r.line()}")
            if len(self.rejects) > limit:
                more = f": all in {rejects_file}" if rejects_file else ""
                out.append(f"  ... and {len(self.rejects) - limit} more{more}")
        out += self.notes
        if not self.usable:
            out.append("error: no usable utterance")
        return out

    def write_rejects(self, path: str | Path) -> Path:
        """All rejected items as TSV: split, file, reason, detail (where)."""
        with atomic_open(path) as f:
            f.write("split\tfile\treason\tdetail\twhere\n")
            for r in self.rejects:
                f.write("\t".join(x.replace("\t", " ").replace("\n", " ") for x in
                                  (r.split, r.file, r.kind, r.detail, r.where)) + "\n")
        return Path(path)

    def exit_code(self) -> int:
        """0 when something usable remains, 1 when nothing does."""
        return 0 if self.usable else 1
