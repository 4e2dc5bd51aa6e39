"""The machine `python -m asr.bench.gpu` runs on: what it is (machine_info, machine_line), what
its image lacks (stub_missing_modules), and its GPU while measuring (sync, peak_memory_gib,
UtilSampler).

Only the standard library and torch are imported here: this module loads before the stubs are
in place, so that project modules importing pyyaml, tqdm, jiwer or soundfile at the top load on
a bare torch + torchaudio + numpy image (docs/gpu.md).
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import types

import torch

STUBBABLE = ("yaml", "tqdm", "jiwer", "soundfile")  # imported at module level, never called here


# ---------------------------------------------------------------- what the image lacks

def stub_missing_modules(names=STUBBABLE) -> list[str]:
    """Empty stand-ins for the modules of `names` that do not import, so that project modules
    importing them at the top load on a bare torch image; using one of their names raises."""
    stubbed = []
    for name in names:
        try:
            importlib.import_module(name)
        except (ImportError, OSError):  # soundfile raises OSError without libsndfile
            module = types.ModuleType(name)
            module.__spec__ = importlib.machinery.ModuleSpec(name, None)
            module.__getattr__ = functools.partial(_missing_attribute, name)  # PEP 562
            sys.modules[name] = module
            stubbed.append(name)
    return stubbed


def _missing_attribute(module: str, attr: str):
    if attr.startswith("__"):
        raise AttributeError(attr)

    def unavailable(*args, **kwargs):
        raise RuntimeError(f"{module}.{attr}: {module} is not installed (stubbed by asr.bench.gpu)")
    return unavailable


# ---------------------------------------------------------------- what it is

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_driver() -> str | None:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.split("\n")[0].strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def torchaudio_version() -> str:
    try:
        import torchaudio
        return torchaudio.__version__
    except Exception as e:  # the sections that need it will fail and say so
        return f"not importable ({type(e).__name__}: {e})"


def machine_info() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "torchaudio": torchaudio_version(), "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "cpu": cpu_model(), "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
            "tf32": {"cudnn": torch.backends.cudnn.allow_tf32,
                     "matmul": torch.backends.cuda.matmul.allow_tf32},
            "cudnn_benchmark": torch.backends.cudnn.benchmark}
    if torch.cuda.is_available():
        try:
            props = torch.cuda.get_device_properties(0)
            info.update(gpu=torch.cuda.get_device_name(0), gpu_memory_gib=props.total_memory / 2**30,
                        capability=f"sm_{props.major}{props.minor}", driver=gpu_driver())
        except Exception as e:  # a broken driver: the sections will say more
            info["gpu_error"] = f"{type(e).__name__}: {e}"
    return info


def machine_line(m: dict) -> str:
    gpu = (f"{m['gpu']} ({m['gpu_memory_gib']:.0f} GiB, {m['capability']}, driver {m['driver']}), "
           f"{m['gpus']} GPU(s) visible" if m.get("gpu") else "no CUDA GPU")
    return (f"{gpu}; torch {m['torch']}, torchaudio {m['torchaudio']}, CUDA {m['cuda']}, "
            f"cuDNN {m['cudnn']}; CPU {m['cpu']} ({m['cpu_cores']} cores); Python {m['python']}")


# ---------------------------------------------------------------- its GPU while measuring

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def nvidia_smi_index(device: torch.device) -> str:
    """nvidia-smi's -i for a torch device (its CUDA_VISIBLE_DEVICES entry when set)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    index = device.index or 0
    return visible.split(",")[index].strip() if visible else str(index)


def utilisation_query(device: torch.device):
    """(a function returning the GPU's utilisation in %, its source), or (None, why not)."""
    if device.type != "cuda":
        return None, "n/a: no CUDA"
    try:
        torch.cuda.utilization(device)  # needs pynvml (nvidia-ml-py)
        return (lambda: torch.cuda.utilization(device)), "torch.cuda.utilization"
    except Exception:
        pass
    smi = shutil.which("nvidia-smi")
    if smi:
        cmd = [smi, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
               "-i", nvidia_smi_index(device)]

        def query() -> float:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=5, check=True)
            return float(out.stdout.split()[0])
        try:
            query()
            return query, "nvidia-smi"
        except Exception:
            pass
    return None, "n/a: neither torch.cuda.utilization (pynvml) nor nvidia-smi works"


class UtilSampler:
    """Mean GPU utilisation (%) over a `with` block, sampled in a thread every `every` s."""

    def __init__(self, device: torch.device, every: float = 0.25):
        self.query, self.source = utilisation_query(device)
        self.every, self.samples = every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            try:
                self.samples.append(float(self.query()))
            except Exception:
                return
            if self._stop.wait(self.every):
                return

    def __enter__(self):
        if self.query is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.query is not None:
            self._thread.join(timeout=10)

    def mean(self) -> float | None:
        return statistics.fmean(self.samples) if self.samples else None
