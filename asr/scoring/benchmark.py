"""`asr benchmark` / `make benchmark`: every listed system decoded and scored on every test split.

The systems are listed in ``recipes/<name>/benchmark.yaml`` (beside the recipe's config; another
file with ``--benchmark FILE``)::

    benchmark:
      - {decoder: greedy, checkpoint: best}
      - {decoder: greedy, checkpoint: last}
      - {decoder: beam, checkpoint: best, beam_size: 8}   # extra keys go to the decoder
    normalize: none        # optional: as `asr score --normalize`
    mapping: null          # optional: word mapping file
    n_boot: 1000           # optional: bootstrap resamples for the CIs
    by_speaker: false      # optional: resample speakers instead of utterances

``checkpoint`` is ``best`` / ``last`` (in the run's checkpoints/), or a path to a checkpoint file
or run folder. Without a benchmark file, the recipe's own ``decode.decoder`` and
``decode.checkpoint`` are benchmarked. For each system and split the decode is timed for the
real-time factor (RTF = decode wall time / audio duration, from the feature store's durations;
model loading and feature extraction are not included), the hypotheses are written to
``exp_dir/benchmark/<decoder>-<checkpoint>/<split>/hyp.jsonl`` with a full report beside them,
and one table (WER ± 95% CI, CER, SER, S/D/I, RTF) goes to ``exp_dir/benchmark.md`` and
``exp_dir/benchmark.json`` (:func:`report_paths`); :func:`run_benchmark` returns its rows
(``asr benchmark`` prints the table).

Decoders are looked up by name in the one registry, ``asr.decoding.decoders.DECODERS``; more
join with ``@register_decoder(name)`` on a function ``fn(log_probs, lengths, vocab, cfg,
frame_s)``. Each store is decoded by ``decode_store(model, vocab, store, device, settings)``
(settings: DecodeConfig defaults, the entry's options, LM paths from the recipe's lm section;
``batch_frames`` among the options goes to decode_store), giving ``[{"id", "text", "words"}, ...]``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import yaml

from asr.decoding.decoders import check_decoder_options, get_decoder
from asr.utils import atomic_write_text, pick_device

log = logging.getLogger(__name__)

SPEC_KEYS = {"benchmark", "normalize", "mapping", "n_boot", "by_speaker"}


def load_benchmark(path: str | Path | None, cfg, required: bool = False) -> dict:
    """The benchmark spec from a YAML file, or (path None or absent and not required) the
    recipe's own decode section as the single system."""
    if path is None or not Path(path).is_file():
        if required:
            raise FileNotFoundError(f"{path}: no such benchmark file")
        return {"benchmark": [{"decoder": cfg.decode.decoder, "checkpoint": cfg.decode.checkpoint}]}
    with open(path, encoding="utf-8") as f:
        spec = yaml.safe_load(f) or {}
    if not isinstance(spec, dict) or not isinstance(spec.get("benchmark"), list) or not spec["benchmark"]:
        raise ValueError(f"{path}: expected a mapping with a non-empty list 'benchmark:' of "
                         "{decoder: ..., checkpoint: ...} entries")
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {sorted(unknown)} (known: {sorted(SPEC_KEYS)})")
    for k, e in enumerate(spec["benchmark"]):
        if not isinstance(e, dict) or "decoder" not in e:
            raise ValueError(f"{path}: benchmark entry {k + 1} needs a 'decoder'")
        e.setdefault("checkpoint", cfg.decode.checkpoint)
    return spec


def _resolve_checkpoint(exp_dir: str | Path, which: str) -> tuple[Path, str]:
    """(checkpoint file, label): 'best'/'last' in the run folder, or a file / run-folder path."""
    from asr.checkpoint import find_checkpoint
    p = Path(str(which))
    if p.suffix == ".pt" or p.is_dir() or "/" in str(which):
        if p.is_dir():
            return find_checkpoint(p), p.name
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such checkpoint")
        return p, p.stem
    path = find_checkpoint(exp_dir, str(which))  # best without best.pt: last.pt, with a warning
    if path.stem != str(which):
        return path, f"{which}->{path.stem}"
    return path, str(which)


def _references(cfg, split: str, store):
    """The split's manifest (with speakers/subsets) if present, else the texts in the store."""
    from asr.scoring.readers import Transcripts, read_transcripts
    manifest = Path(cfg.data.root) / "manifests" / f"{split}.jsonl"
    if manifest.is_file():
        return read_transcripts(manifest, "jsonl")
    t = Transcripts(path=str(store.path))
    for e in store.entries:
        t.texts[e["id"]] = e.get("text", "")
        if e.get("speaker"):
            t.speakers[e["id"]] = e["speaker"]
    return t


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label)


def report_paths(exp_dir: str | Path) -> tuple[Path, Path]:
    """The run's benchmark table as markdown and as JSON: (benchmark.md, benchmark.json)."""
    return Path(exp_dir) / "benchmark.md", Path(exp_dir) / "benchmark.json"


def run_benchmark(cfg, spec: dict, device: str | None = None, reports: bool = True) -> list[dict]:
    """Decode + score every entry of spec on every test split; writes report_paths (the table:
    asr.scoring.tables.results_table of the rows) and returns the rows, one per system and
    split."""
    import torch

    from asr.checkpoint import load_checkpoint, model_from_checkpoint
    from asr.config import DecodeConfig
    from asr.data.store import open_store
    from asr.decoding.decoders import decode_store, write_hyps
    from asr.scoring.score import score, summary
    from asr.scoring.tables import results_table
    from asr.source import lm_settings
    from asr.text.normalize import Normalizer

    entries = spec["benchmark"]
    for e in entries:  # fail before any decoding: unknown decoders first, then their options
        get_decoder(e["decoder"])
    for e in entries:
        check_decoder_options(e["decoder"], {k: v for k, v in e.items() if k not in ("decoder", "checkpoint")})
    norm = Normalizer.parse(spec.get("normalize") or "none", spec.get("mapping"))
    n_boot = int(spec.get("n_boot") or 1000)
    by_speaker = bool(spec.get("by_speaker"))
    exp_dir = Path(cfg.train.exp_dir)
    dev = pick_device(device or cfg.train.device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    stores = {split: open_store(cfg.data.root, split, cfg.features) for split in cfg.data.test_splits}
    rows = []
    for e in entries:
        options = {k: v for k, v in e.items() if k not in ("decoder", "checkpoint")}
        batching = {"batch_frames": options["batch_frames"]} if "batch_frames" in options else {}
        settings = lm_settings(cfg, DecodeConfig(decoder=e["decoder"],
                                                 **{k: v for k, v in options.items() if k != "batch_frames"}))
        path, label = _resolve_checkpoint(exp_dir, e["checkpoint"])
        model, vocab, _ = model_from_checkpoint(load_checkpoint(path))
        model.to(dev)
        for split, store in stores.items():
            audio_s = sum(float(x.get("duration") or 0.0) for x in store.entries)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            hyps = decode_store(model, vocab, store, dev, settings, **batching)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            wall = time.perf_counter() - t0
            out = exp_dir / "benchmark" / _safe(f"{e['decoder']}-{label}") / split
            write_hyps(out / "hyp.jsonl", hyps)
            ref = _references(cfg, split, store)
            s = score(ref.texts, {h["id"]: h["text"] for h in hyps}, normalizer=norm,
                      speakers=ref.speakers or None, subsets=ref.subsets or None,
                      by_speaker=by_speaker, n_boot=n_boot)
            if reports:
                from asr.scoring.report import write_all
                write_all(out, s, title=f"{split}: {e['decoder']} / {label}",
                          sources={"reference": ref.path, "hypothesis": out / "hyp.jsonl",
                                   "checkpoint": path})
            row = {"split": split, "decoder": e["decoder"], "checkpoint": label,
                   "checkpoint_path": str(path), "options": options, "decode_s": round(wall, 3),
                   "audio_s": round(audio_s, 3), "rtf": wall / audio_s if audio_s else None,
                   "device": str(dev), **summary(s)}
            rows.append(row)
            log.info("%s %s/%s: WER %.2f ± %.2f, RTF %s", split, e["decoder"], label, s["wer"],
                     s["wer_ci"], f"{row['rtf']:.3f}" if row["rtf"] is not None else "n/a")
    table = results_table(rows)
    ci = f"{n_boot} resamples of {'speakers' if by_speaker else 'utterances'}"
    md = ["# Benchmark", "", f"- run: `{exp_dir}`", f"- normalisation: {norm.describe()}",
          f"- device: {dev}; RTF = decode wall time / audio duration (lower is faster)",
          f"- WER ± is the half-width of the 95% bootstrap confidence interval ({ci})", "",
          table, "", "Per-system reports: `benchmark/<decoder>-<checkpoint>/<split>/report.html`.", ""]
    exp_dir.mkdir(parents=True, exist_ok=True)
    md_path, json_path = report_paths(exp_dir)
    atomic_write_text(md_path, "\n".join(md))
    atomic_write_text(json_path, json.dumps(rows, indent=1, ensure_ascii=False, default=str))
    return rows
