"""A bundle's model card: what the model is and what it learnt from (card.json), and the
README.md that renders it, from the run's saved config, checkpoint and report."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import yaml

from asr.version import __version__
from asr.run_folder import RunFolder


def model_card(run: Path, ckpt: dict, cfg, params: int, vocab_size: int, lm_names: set[str]) -> dict:
    """What the model is and what it learnt from, from the run's saved config and metrics."""
    config = RunFolder(run).config
    saved = yaml.safe_load(config.read_text(encoding="utf-8")) if config.is_file() else {}
    data = (saved or {}).get("data", {})
    model = ckpt["config"].get("model", {})
    card = {
        "toolkit": f"asr-ctc {__version__}",
        "date": datetime.date.today().isoformat(),
        "run": str(run),
        "model": {k: model.get(k) for k in ("rnn_type", "rnn_layers", "rnn_hidden", "bidirectional",
                                              "lookahead", "subsample", "projection")},
        "parameters": params,
        "units": f"{data.get('units', 'chars')} ({vocab_size} incl. blank)",
        "features": ckpt["config"].get("features", {}),
        "training": {"corpus": data.get("corpus"), "split": data.get("train_split"),
                     "updates": ckpt.get("step"), "epochs_started": ckpt.get("epoch"),
                     "best_dev_cer": round(ckpt["best_cer"], 2) if ckpt.get("best_cer") is not None else None,
                     "hours": train_hours(Path(cfg.data.root), data.get("train_split", "train"))},
        "language_model": sorted(lm_names) or None,
    }
    return card


def train_hours(root: Path, split: str) -> float | None:
    """Hours of the training manifest, when it is still where the run found it."""
    manifest = root / "manifests" / f"{split}.jsonl"
    if not manifest.is_file():
        return None
    seconds = 0.0
    with open(manifest, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                seconds += float(json.loads(line).get("duration") or 0)
    return round(seconds / 3600, 2)


def render_card(card: dict, report: Path) -> str:
    """README.md of a bundle: the card as prose and the run's results table."""
    t, m = card["training"], card["model"]
    arch = (f"{m['rnn_layers']}×{'Bi' if m['bidirectional'] else ''}{str(m['rnn_type']).upper()}-"
            f"{m['rnn_hidden']}, subsampling {m['subsample']}")
    lines = [f"# Model card ({card['toolkit']}, bundled {card['date']})", "",
             f"- Architecture: conv front-end + {arch}; {card['parameters']:,} parameters; "
             f"units {card['units']}.",
             f"- Training: corpus {t['corpus']}, split {t['split']}"
             + (f" ({t['hours']} h)" if t["hours"] is not None else "")
             + f", {t['updates']} updates, best dev CER {t['best_dev_cer']} %.",
             f"- Language model: {', '.join(card['language_model']) if card['language_model'] else 'none (greedy decoding)'}.",
             "", "Use: `asr transcribe THIS_FOLDER audio.wav` or `asr.load(THIS_FOLDER).transcribe(...)`.", ""]
    if report.is_file():
        table = [ln for ln in report.read_text(encoding="utf-8").splitlines()[:60] if ln.startswith("|")]
        lines += ["## Results of the run", ""] + table[:40] + [""]
    return "\n".join(lines)
