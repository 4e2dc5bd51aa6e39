"""Pictures drawn with matplotlib (imported lazily, with the Agg backend: no display needed); every
PNG is written atomically. asr.plots.training: a training run's curves (`asr plot training`);
the pictures of single utterances are asr.scoring.pictures (`asr plot utterances`)."""

from __future__ import annotations

from pathlib import Path

from asr.utils import atomic_path

DPI = 100


def pyplot():
    """matplotlib.pyplot with the Agg backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_png(plt, fig, path: Path) -> Path:
    """Write fig to path (PNG, atomically, at DPI) and close it; the path."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=DPI)
    plt.close(fig)
    return Path(path)
