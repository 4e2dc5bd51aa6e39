"""The report of `python -m asr.bench.gpu`: the JSON (Report, saved after every section), each
section run on its own under the time guard (run_section) and its table row (describe).

Nothing from the project is imported at the top (asr.utils when saving): this module loads
before the stubs of asr.bench.gpu_machine are in place.
"""

from __future__ import annotations

import gc
import json
import time
import traceback

import torch


class Report:
    """The JSON being built, written atomically after every section: a later failure or a kill
    loses nothing already measured."""

    def __init__(self, path: str, data: dict):
        self.path, self.data = path, {**data, "sections": {}}

    def add(self, name: str, entry: dict) -> None:
        self.data["sections"][name] = entry
        self.save()

    def save(self) -> None:
        from asr.utils import atomic_write_text
        atomic_write_text(self.path, json.dumps(self.data, indent=1, default=str,
                                                ensure_ascii=False) + "\n")


def run_section(report: Report, name: str, fn, end: float, cap_s: float, min_s: float) -> dict:
    """fn(deadline) -> its figures, unless fewer than min_s seconds of the budget are left;
    deadline = the sooner of the budget's end and cap_s from now. An exception is recorded
    (status failed) and the run goes on. The row is printed and the JSON saved."""
    left = end - time.monotonic()
    t0 = time.monotonic()
    if left < min_s:
        entry = {"status": "skipped", "reason": f"time guard: {left:.0f} s of the budget left"}
    else:
        try:
            entry = {"status": "ok", **fn(min(end, t0 + cap_s))}
        except Exception as e:
            entry = {"status": "failed", "error": f"{type(e).__name__}: {e}"[:2000],
                     "traceback": traceback.format_exc()[-3000:]}
    entry["seconds"] = time.monotonic() - t0
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    report.add(name, entry)
    try:
        cell = describe(entry)
    except Exception as e:  # a figure missing or None: print it raw rather than stop the run
        cell = f"({type(e).__name__} printing it) {json.dumps(entry, default=str)[:300]}"
    print(f"| {name} | {cell} | {entry['seconds']:.1f} |", flush=True)
    return entry


def describe(e: dict) -> str:
    """One table cell for a section's entry."""
    if e["status"] == "failed":
        return f"FAILED: {e['error'][:300]}"
    if e["status"] == "skipped":
        return f"skipped: {e['reason']}"
    verdict = {True: "PASS", False: "FAIL"}.get(e.get("pass"), "")
    kind = e["kind"]
    if kind in ("throughput", "waveform"):
        mem = f"{e['peak_mem_gib']:.1f} GiB" if e["peak_mem_gib"] is not None else "n/a (no CUDA)"
        util = f"{e['gpu_util_pct']:.0f} %" if e["gpu_util_pct"] is not None else e["gpu_util_source"]
        extra = (f"; featuriser alone {e['featuriser_x_realtime']:,.0f}x real time"
                 if kind == "waveform" else "")
        unit = "GPU-h" if e["device"] == "cuda" else "CPU-h"
        return (f"{e['audio_h_per_gpu_h']:,.0f} audio-h/{unit} ({e['timed_updates']} updates, median "
                f"{e['median_step_s']:.3f} s, {e['audio_s_per_batch']:.0f} s audio/batch), peak "
                f"{mem}, util {util}{extra}")
    if kind == "phases":
        shares = ", ".join(f"{p} {100 * s:.0f} %" for p, s in e["share"].items())
        return (f"{shares} (forward = front-end + RNN + output {100 * e['forward_share']:.0f} %; "
                f"update {e['step_s']:.3f} s, synchronised per phase)")
    if kind == "parity":
        return (f"{e['candidate']} vs {e['reference']}: loss rel err {e['loss_rel_err']:.1e}, grads "
                f"{e['grad_rel_err']:.1e} (worst {e['worst_tensor_rel_err']:.1e} "
                f"{e['worst_tensor']}); bf16 loss rel err {e['bf16_loss_rel_err']:.1e}: {verdict}")
    if kind == "convergence":
        return (f"loss {e['first_loss']:.2f} -> {e['last_loss']:.3f} over {e['updates']} updates, "
                f"greedy CER {100 * e['greedy_cer']:.1f} %: {verdict}")
    if kind == "decoder":
        text = (f"{e['reference']}: RTF {e['reference_rtf']:.4f}, CER vs truth "
                f"{100 * e['reference_cer_vs_truth']:.2f} %")
        if "cuda_rtf" not in e:
            return f"{text}; CUDA decoder {e['cuda_decoder']}"
        return (f"{text}; {e['cuda_decoder']}: RTF {e['cuda_rtf']:.5f}, CER vs truth "
                f"{100 * e['cuda_cer_vs_truth']:.2f} %, same text {100 * e['same_text_share']:.0f} %, "
                f"disagreement {100 * e['disagreement_cer']:.2f} %: {verdict}")
    if kind == "ddp":
        text = f"{e['gpus']} GPU(s), NCCL {'available' if e['nccl_available'] else 'missing'}"
        if e["multi_process"] != "ok":
            return f"{text}; multi-process check {e['multi_process']}"
        return (f"{text}; {e['world']} processes ({e['backend']}): {e['updates']} updates, "
                f"{e['audio_h_per_h_all_ranks']:,.0f} audio-h/h, parameters equal: {e['params_equal']}")
    return json.dumps(e, default=str)[:300]
