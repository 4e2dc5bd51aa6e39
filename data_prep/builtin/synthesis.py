"""Speaking planned jobs: the espeak-ng / flite / festival command lines, trimming and scaling
their output, and synthesising chunks of jobs over worker processes (existing wavs are kept)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import soundfile as sf
import torch
from tqdm import tqdm

from asr.data.audio import AudioError, load_audio, write_wav
from asr.utils import WorkerPool

SAMPLE_RATE = 16000

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


def _run(cmd: list[str], timeout: float) -> str | None:
    """Run a synthesiser; None on success, else a short error message."""
    try:
        subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=timeout, check=True)
    except subprocess.CalledProcessError as e:
        return f"{cmd[0]} exited {e.returncode}: {e.stderr.decode(errors='replace')[-200:].strip()}"
    except (subprocess.TimeoutExpired, OSError) as e:
        return f"{cmd[0]}: {e}"
    return None


def _run_festival(jobs: list[dict], tmp: Path, name: str, timeout: float) -> str | None:
    """One festival process over jobs, writing tmp/<id>.raw.wav for each it manages."""
    script = tmp / f"{name}.scm"
    script.write_text(_festival_script(jobs, tmp), encoding="utf-8")
    return _run(["festival", "--batch", str(script)], timeout=timeout)


def _speak(job: dict, raw: Path, tmp: Path) -> str | None:
    """Make the engine's raw wav of one job; None on success, else the error.

    Festival jobs were spoken by the chunk's batch run; one it missed is retried on its own.
    """
    if job["engine"] == "espeak":
        return _run(_espeak_cmd(job, raw), timeout=60)
    if job["engine"] == "flite":
        return _run(_flite_cmd(job, raw), timeout=60)
    if raw.exists():
        return None
    error = _run_festival([job], tmp, job["id"], timeout=120)
    if error is None and not raw.exists():
        error = "festival wrote no audio"
    return error


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
            wav = _postprocess(load_audio(raw, SAMPLE_RATE), job["peak"])
        except AudioError as e:
            wav, error = None, str(e)
        if wav is None and error is None:
            error = "empty or silent audio"
    if error is not None:
        return job["id"], None, f"{job['id']} ({job['speaker']}): {error}"
    write_wav(final, wav, SAMPLE_RATE)
    return job["id"], round(wav.numel() / SAMPLE_RATE, 3), None


def _synth_chunk(args: tuple[list[dict], str]) -> list[Result]:
    """Synthesise a chunk of jobs: (id, duration or None, error or None) for each.

    Wavs already present are kept (resume). Festival jobs of the chunk share one process;
    any it could not make are retried one by one before being counted as failures.
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
        for job, final in todo:
            raw = tmp / f"{job['id']}.raw.wav"
            results.append(_finish_one(job, raw, final, _speak(job, raw, tmp)))
    return results


def _chunks(jobs: list[dict], size: int, audio_root: Path):
    for i in range(0, len(jobs), size):
        yield jobs[i:i + size], str(audio_root)


def synthesise(jobs: list[dict], audio_root: Path, nj: int, progress: bool) -> dict[str, tuple]:
    """Run all jobs over nj processes; {id: (duration or None, error or None)}."""
    size = max(4, min(32, len(jobs) // (nj * 8) or 1))  # big enough to amortise festival startup
    done: dict[str, tuple] = {}
    with WorkerPool(nj) as workers, \
            tqdm(total=len(jobs), desc="builtin tts", unit="utt", disable=not progress) as bar:
        for res in workers.imap(_synth_chunk, _chunks(jobs, size, audio_root), ordered=False):
            done.update((i, (d, e)) for i, d, e in res)
            bar.update(len(res))
    return done
