"""Speaking planned jobs: the espeak-ng / flite / festival command lines, SVOX Pico in process,
Piper in its own processes, the pseudo-speaker perturbation (perturb), trimming and scaling
the output, and synthesising chunks of jobs over worker processes (existing wavs are kept)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from asr.data.audio import AudioError, load_audio, write_wav
from asr.utils import WorkerPool
from data_prep.builtin.voices import PIPER_VOICES

SAMPLE_RATE = 16000
# piper's onnxruntime reads ORT_INTRA_OP_NUM_THREADS (it ignores OMP_NUM_THREADS): one thread,
# since there is one synthesis process per core already.
PIPER_ENV = {"ORT_INTRA_OP_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}

Result = "tuple[str, float | None, str | None]"  # (id, duration, error)


def _espeak_cmd(job: dict, out: Path) -> list[str]:
    return ["espeak-ng", "-v", job["voice"], "-s", str(job["rate"]), "-p", str(job["pitch"]),
            "-w", str(out), job["text"]]


def _flite_cmd(job: dict, out: Path) -> list[str]:
    cmd = ["flite", "-voice", job["voice"], "--setf", f"duration_stretch={job['stretch']}"]
    if job["f0"] is not None:
        cmd += ["--setf", f"int_f0_target_mean={job['f0']}"]
    return cmd + ["-t", job["text"], "-o", str(out)]


def _festival_script(jobs: list[dict], tmp: Path) -> str:
    """Scheme that synthesises all jobs in one festival process (startup dominates otherwise).

    unwind-protect keeps one failing utterance from aborting the rest of the batch.
    """
    lines = []
    current = None
    for job in sorted(jobs, key=lambda j: j["voice"]):  # fewer voice switches
        if job["voice"] != current:
            current = job["voice"]
            lines.append(f"(voice_{current})")
        if "speed" in job:
            lines.append(f"(set! hts_engine_params (append {current}::hts_engine_params "
                         f"(list (list \"-r\" {job['speed']}))))")
        else:
            lines.append(f"(Parameter.set 'Duration_Stretch {job['stretch']})")
            lines.append(f"(set! int_lr_params '((target_f0_mean {job['f0']}) (target_f0_std 15)"
                         " (model_f0_mean 170) (model_f0_std 34)))")
        # Text is [a-z' ] only, so it is safe inside a Scheme string. Utterance does not
        # evaluate its arguments, hence the literal per utterance rather than a function.
        lines.append(f'(unwind-protect (let ((u (Utterance Text "{job["text"]}"))) (utt.synth u)'
                     f' (utt.save.wave u "{tmp / (job["id"] + ".raw.wav")}" (quote riff))) nil)')
    return "\n".join(lines) + "\n"


def _run(cmd: list[str], timeout: float, env: dict | None = None, name: str = "") -> str | None:
    """Run a synthesiser (env: variables to add; name: for messages, else the program); None on
    success, else a short error message."""
    name = name or cmd[0]
    try:
        subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=timeout, check=True,
                       env={**os.environ, **env} if env else None)
    except subprocess.CalledProcessError as e:
        return f"{name} exited {e.returncode}: {e.stderr.decode(errors='replace')[-200:].strip()}"
    except (subprocess.TimeoutExpired, OSError) as e:
        return f"{name}: {e}"
    return None


_PICO = None  # one engine per worker process, made there (after the fork)


def _speak_pico(job: dict, raw: Path) -> str | None:
    """SVOX Pico in this process: 16 kHz int16 PCM written as raw; None or the error."""
    global _PICO
    try:
        if _PICO is None:
            _PICO = importlib.import_module("py_nanotts").NanoTTS()
        pcm = _PICO.speak(job["text"], voice=job["voice"], pitch=job["pitch"])
    except Exception as e:  # the binding raises plain RuntimeError/ValueError; keep the run going
        return f"pico: {e}"
    if len(pcm) < 2:
        return "pico returned no audio"
    sf.write(str(raw), np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2"), SAMPLE_RATE)
    return None


def piper_cmd(voice: str, *args: str) -> list[str]:
    """Command line of the piper CLI with a voice's model. piper is GPL: it runs only as its
    own process; the voice package is plain data (its .onnx and .json)."""
    pkg = importlib.import_module(PIPER_VOICES[voice])
    return [sys.executable, "-m", "piper", "-m", str(pkg.model_path()), "-c",
            str(pkg.config_path()), *args]


def _run_piper_cli(voice: str, args: list[str], timeout: float) -> str | None:
    """Run piper with a voice; None on success, else the error (also for a missing voice)."""
    try:
        cmd = piper_cmd(voice, *args)
    except (KeyError, ImportError) as e:
        return f"piper voice {voice}: {e!r}"
    return _run(cmd, timeout, PIPER_ENV, name="piper")


def _run_piper(jobs: list[dict], tmp: Path, name: str, timeout: float) -> str | None:
    """One piper process per voice over jobs (the model loads once), writing tmp/<id>.raw.wav
    for the jobs of each run that made all its wavs; the first error, else None."""
    errors = [_piper_batch([j for j in jobs if j["voice"] == voice], tmp, f"{name}-{voice}",
                           timeout) for voice in sorted({j["voice"] for j in jobs})]
    return next((e for e in errors if e is not None), None)


def _piper_batch(jobs: list[dict], tmp: Path, name: str, timeout: float) -> str | None:
    """One piper run over jobs of one voice: each line of text becomes a wav in its own folder."""
    text, out = tmp / f"{name}.txt", tmp / name
    text.write_text("".join(j["text"] + "\n" for j in jobs), encoding="utf-8")
    error = _run_piper_cli(jobs[0]["voice"], ["-i", str(text), "-d", str(out)], timeout)
    # -d names each wav by a monotonic clock in nanoseconds: sorted, they follow the lines
    wavs = sorted((p for p in out.glob("*.wav") if p.stem.isdigit()), key=lambda p: int(p.stem))
    if error is None and len(wavs) != len(jobs):
        error = f"piper wrote {len(wavs)} wavs for {len(jobs)} lines"
    if error is not None:  # which wav is whose is unsure: all are retried one by one
        return error
    for job, wav in zip(jobs, wavs):
        wav.rename(tmp / f"{job['id']}.raw.wav")
    return None


def _speak_piper(job: dict, raw: Path, tmp: Path) -> str | None:
    """A job the chunk's piper run missed, on its own (22.05 kHz; load_audio resamples)."""
    text = tmp / f"{job['id']}.txt"
    text.write_text(job["text"] + "\n", encoding="utf-8")
    error = _run_piper_cli(job["voice"], ["-i", str(text), "-f", str(raw)], 120)
    if error is None and not raw.exists():
        error = "piper wrote no audio"
    return error


def _run_festival(jobs: list[dict], tmp: Path, name: str, timeout: float) -> str | None:
    """One festival process over jobs, writing tmp/<id>.raw.wav for each it manages."""
    script = tmp / f"{name}.scm"
    script.write_text(_festival_script(jobs, tmp), encoding="utf-8")
    return _run(["festival", "--batch", str(script)], timeout=timeout)


def _speak(job: dict, raw: Path, tmp: Path) -> str | None:
    """Make the engine's raw wav of one job; None on success, else the error.

    Festival and piper jobs were spoken by the chunk's batch runs; one they missed is retried
    on its own.
    """
    if job["engine"] == "espeak":
        return _run(_espeak_cmd(job, raw), timeout=60)
    if job["engine"] == "flite":
        return _run(_flite_cmd(job, raw), timeout=60)
    if job["engine"] == "pico":
        return _speak_pico(job, raw)
    if raw.exists():
        return None
    if job["engine"] == "piper":
        return _speak_piper(job, raw, tmp)
    error = _run_festival([job], tmp, job["id"], timeout=120)
    if error is None and not raw.exists():
        error = "festival wrote no audio"
    return error


def _sox(wav: torch.Tensor, *effects: str) -> torch.Tensor:
    """wav through sox effects, as float32 on pipes. -R (repeatable) and -D (no dither) keep
    it deterministic; the input is scaled well below full scale since sox clips at 1."""
    scale = 0.5 / max(float(wav.abs().max()), 1e-9)
    fmt = ["-t", "f32", "-r", str(SAMPLE_RATE), "-c", "1"]
    try:
        p = subprocess.run(["sox", "-R", "-D", *fmt, "-", *fmt, "-", *effects],
                           input=(wav * scale).numpy().astype("<f4").tobytes(),
                           capture_output=True, timeout=60, check=True)
    except subprocess.CalledProcessError as e:
        err = e.stderr.decode(errors="replace")[-200:].strip()
        raise RuntimeError(f"sox exited {e.returncode}: {err}") from None
    except (subprocess.TimeoutExpired, OSError) as e:
        raise RuntimeError(f"sox: {e}") from None
    return torch.from_numpy(np.frombuffer(p.stdout, dtype="<f4").copy()) / scale


_N_FFT, _HOP, _LIFTER = 512, 128, 30  # lifter 30 samples (1.9 ms): below any voice's period


def _envelope(spec: torch.Tensor) -> torch.Tensor:
    """Log spectral envelope per frame by cepstral smoothing (drops the harmonics)."""
    cep = torch.fft.irfft(torch.log(spec.abs() + 1e-6), dim=0)
    cep[_LIFTER:-_LIFTER] = 0
    return torch.fft.rfft(cep, dim=0).real


def shift_pitch(wav: torch.Tensor, cents: float) -> torch.Tensor:
    """Move f0 by cents, keeping the formants: sox's pitch moves the whole spectrum, then each
    frame is given back the original spectral envelope."""
    moved = _sox(wav, "pitch", f"{cents:g}")
    moved = torch.nn.functional.pad(moved, (0, max(0, wav.numel() - moved.numel())))
    moved = moved[: wav.numel()]
    window = torch.hann_window(_N_FFT)
    orig = torch.stft(wav, _N_FFT, _HOP, window=window, return_complex=True)
    spec = torch.stft(moved, _N_FFT, _HOP, window=window, return_complex=True)
    gain = torch.exp(_envelope(orig) - _envelope(spec)).clamp(max=10.0)  # no noise boost
    return torch.istft(spec * gain, _N_FFT, _HOP, window=window, length=wav.numel())


def perturb(wav: torch.Tensor, job: dict) -> torch.Tensor:
    """A pseudo-speaker's voice from its engine voice's audio (deterministic for a job).

    job["shift"] cents moves f0 alone (engines without their own pitch control); sox's speed
    then resamples by job["warp"], scaling formants and f0 together like a shorter or longer
    vocal tract, and tempo sets the duration to the original's / job["tempo"].
    """
    if job.get("shift"):
        wav = shift_pitch(wav, job["shift"])
    tempo = f"{job['tempo'] / job['warp']:.6f}"  # speed alone would also divide duration by warp
    return _sox(wav, "speed", f"{job['warp']:g}", "tempo", "-s", tempo)


def _postprocess(wav: torch.Tensor, peak: float) -> torch.Tensor | None:
    """Trim silence at both ends (keeping ~0.1 s) and scale to the given peak; None if silent."""
    frame = SAMPLE_RATE // 100
    n = wav.numel() // frame
    if n < 5:
        return None
    rms = wav[: n * frame].view(n, frame).pow(2).mean(1).sqrt()
    if rms.max() < 1e-3:  # engines write near-silence when they find nothing to say
        return None
    loud = (rms > rms.max() * 0.03).nonzero().flatten()  # -30 dB below the loudest frame
    pad = SAMPLE_RATE // 10
    start = max(0, int(loud[0]) * frame - pad)
    end = min(wav.numel(), (int(loud[-1]) + 1) * frame + pad)
    wav = wav[start:end]
    if wav.numel() < 0.3 * SAMPLE_RATE:  # shorter than any three-word sentence: a glitch
        return None
    return wav * (peak / wav.abs().max())


def _finish_one(job: dict, raw: Path, final: Path, error: str | None) -> Result:
    """Read an engine's output, post-process it and write the final wav atomically."""
    if error is None:
        try:
            wav = load_audio(raw, SAMPLE_RATE)
            if "warp" in job:
                wav = perturb(wav, job)
            wav = _postprocess(wav, job["peak"])
        except (AudioError, RuntimeError) as e:
            wav, error = None, str(e)
        if wav is None and error is None:
            error = "empty or silent audio"
    if error is not None:
        return job["id"], None, f"{job['id']} ({job['speaker']}): {error}"
    write_wav(final, wav, SAMPLE_RATE)
    return job["id"], round(wav.numel() / SAMPLE_RATE, 3), None


def _synth_chunk(args: tuple[list[dict], str]) -> list[Result]:
    """Synthesise a chunk of jobs: (id, duration or None, error or None) for each.

    Wavs already present are kept (resume). Festival jobs of the chunk share one process, and
    so do piper jobs (per voice); any they could not make are retried one by one before being
    counted as failures.
    """
    jobs, audio_root = args
    results, todo = [], []
    for job in jobs:
        final = Path(audio_root) / job["split"] / f"{job['id']}.wav"
        if final.exists():
            results.append((job["id"], round(sf.info(str(final)).duration, 3), None))
        else:
            todo.append((job, final))
    with tempfile.TemporaryDirectory(prefix="builtin-") as tmp_dir:
        tmp = Path(tmp_dir)
        fest = [job for job, _ in todo if job["engine"] == "festival"]
        if fest:
            _run_festival(fest, tmp, "batch", timeout=60 + 10 * len(fest))
        piper = [job for job, _ in todo if job["engine"] == "piper"]
        if piper:
            _run_piper(piper, tmp, "batch", timeout=60 + 10 * len(piper))
        for job, final in todo:
            raw = tmp / f"{job['id']}.raw.wav"
            results.append(_finish_one(job, raw, final, _speak(job, raw, tmp)))
    return results


def _chunks(jobs: list[dict], size: int, audio_root: Path):
    for i in range(0, len(jobs), size):
        yield jobs[i:i + size], str(audio_root)


def synthesise(jobs: list[dict], audio_root: Path, nj: int, progress: bool) -> dict[str, tuple]:
    """Run all jobs over nj processes; {id: (duration or None, error or None)}."""
    size = max(4, min(32, len(jobs) // (nj * 8) or 1))  # amortises festival and piper startup
    done: dict[str, tuple] = {}
    with WorkerPool(nj) as workers, \
            tqdm(total=len(jobs), desc="builtin tts", unit="utt", disable=not progress) as bar:
        for res in workers.imap(_synth_chunk, _chunks(jobs, size, audio_root), ordered=False):
            done.update((i, (d, e)) for i, d, e in res)
            bar.update(len(res))
    return done
