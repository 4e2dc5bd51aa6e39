"""Built-in offline English corpus: text from Debian packages spoken by Debian TTS engines.

No public speech corpus can be downloaded here, so this module makes one:

* Sentences come from fortunes (/usr/share/games/fortunes), the WordNet example sentences
  (/usr/share/wordnet/data.*) and, when its ``bible`` program is installed, the King James
  Bible. They are normalised (asr.text.normalize.normalize_text), filtered, deduplicated, shuffled with
  the seed and cut into DISJOINT pools: dev and test sentences never occur in train.
* Voices: espeak-ng accents x variants, flite voices and festival voices, each utterance with
  its own seeded rate / pitch / gain. One whole voice (HELDOUT_VOICE) is kept out of
  train/dev/test and speaks the test sentences as the ``test_unseen_voice`` split.
* The plan (id, sentence, voice, parameters) depends only on the seed and the requested
  hours, and utterance i of a split is the same whatever the hours, so a larger corpus extends
  a smaller one. Existing wavs are kept (runs resume); every file is written atomically.

Layout::

    out_dir/audio/<split>/<id>.wav         16 kHz mono 16-bit
    out_dir/manifests/<split>.jsonl        id, audio_filepath (relative), duration, text, speaker
    out_dir/manifests/train_text.txt       every train-pool sentence (language-model text)

The text handed to the synthesisers is the normalised transcript itself, so what is spoken is
what the label says (numbers are spelled out before the engine sees them).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import soundfile as sf
import torch
from tqdm import tqdm

from asr.data.audio import AudioError, load_audio, write_wav
from asr.data.manifest import write_manifest
from asr.text.normalize import normalize_text

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
SPLITS = ("train", "dev", "test", "test_unseen_voice")
APT_HINT = ("sudo apt-get install espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k "
            "festvox-us-slt-hts fortunes wordnet-base")
FORTUNE_DIR = Path("/usr/share/games/fortunes")
WORDNET_DIR = Path("/usr/share/wordnet")
FESTIVAL_VOICE_DIR = Path("/usr/share/festival/voices")
PLAN_VERSION = 1  # bump when the plan for a given seed changes, so old audio is not mixed in

# --- voices -----------------------------------------------------------------------------

ESPEAK_ACCENTS = ("en-us", "en-us-nyc", "en-gb", "en-gb-x-rp", "en-gb-scotland",
                  "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
ESPEAK_VARIANTS = tuple(f"m{i}" for i in range(1, 8)) + tuple(f"f{i}" for i in range(1, 6)) + (
    "klatt", "klatt3")
# flite clustergen/diphone voices; f0 = (low, high) target mean in Hz, None: the voice ignores it.
FLITE_VOICES = {"kal16": (85, 135), "rms": None, "slt": (150, 230), "awb": (85, 135)}
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
HELDOUT_VOICE = "flite:awb"  # distinct (Scottish male, clustergen) yet clear; never in training
# Share of utterances per engine: espeak has many voices but sounds least natural.
ENGINE_WEIGHTS = {"espeak": 0.4, "flite": 0.3, "festival": 0.3}

# Seconds per character of normalised text at nominal speed, measured on this corpus after
# trimming (plus SEC_BASE for the kept edges); used to size a split before synthesising it.
SEC_BASE = 0.35
SEC_PER_CHAR = {"espeak": 0.0512, "flite:kal16": 0.0442, "flite:rms": 0.0589, "flite:slt": 0.0491,
                "flite:awb": 0.0500, "festival:kal_diphone": 0.0490,
                "festival:ked_diphone": 0.0483, "festival:cmu_us_slt_arctic_hts": 0.0532}


def voice_names(held_out: bool = False) -> list[str]:
    """Stable speaker names of the training voices, or [HELDOUT_VOICE] if held_out."""
    if held_out:
        return [HELDOUT_VOICE]
    names = [f"espeak:{a}+{v}" for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANTS]
    names += [f"flite:{v}" for v in FLITE_VOICES]
    names += [f"festival:{v}" for v in FESTIVAL_VOICES]
    return [n for n in names if n != HELDOUT_VOICE]


def _draw_voice(rng: random.Random, voices: list[str]) -> dict:
    """Pick a voice (engine first, by ENGINE_WEIGHTS) and draw its per-utterance parameters."""
    by_engine: dict[str, list[str]] = {}
    for name in voices:
        by_engine.setdefault(name.split(":")[0], []).append(name)
    engines = sorted(by_engine)
    engine = rng.choices(engines, weights=[ENGINE_WEIGHTS[e] for e in engines])[0]
    speaker = rng.choice(by_engine[engine])
    voice = speaker.split(":", 1)[1]
    params: dict = {"speaker": speaker, "engine": engine, "voice": voice}
    if engine == "espeak":
        params.update(rate=rng.randint(130, 190), pitch=rng.randint(30, 70))
    elif engine == "flite":
        f0 = FLITE_VOICES[voice]
        params.update(stretch=round(rng.uniform(0.85, 1.2), 3),
                      f0=rng.randint(*f0) if f0 else None)
    elif voice.endswith("_hts"):  # HTS ignores Duration_Stretch and pitch; its engine takes -r
        params.update(speed=round(rng.uniform(0.85, 1.15), 3))
    else:
        params.update(stretch=round(rng.uniform(0.85, 1.2), 3), f0=rng.randint(85, 135))
    params["peak"] = round(0.9 * 10 ** (rng.uniform(-3.0, 0.4) / 20), 4)  # ~0.64-0.95
    return params


def _predicted_seconds(text: str, p: dict) -> float:
    """Duration estimate of one planned utterance, from its length and speaking rate."""
    if p["engine"] == "espeak":  # rate is in words per minute; calibrated at 160
        return SEC_BASE + len(text) * SEC_PER_CHAR["espeak"] * 160 / p["rate"]
    tempo = 1 / p["speed"] if "speed" in p else p["stretch"]
    return SEC_BASE + len(text) * SEC_PER_CHAR[p["speaker"]] * tempo


# --- text -------------------------------------------------------------------------------

_RAW_OK = re.compile(r"^[A-Za-z0-9 .,;:!?'\"()\-&%\u2018\u2019]+$")
_ABBREV = {"etc", "eg", "ie", "vs", "prof", "gen", "col", "capt", "sgt", "lt", "rev", "vol",
           "inc", "ltd", "corp", "esq", "hon", "messrs", "viz", "cf", "al"}
_SENT_END = re.compile(r"(?<=[.!?])[\"')\u2019]*\s+")


def _split_sentences(text: str, extra: str = "") -> list[str]:
    """Split running text at sentence ends (and at the characters in extra, e.g. ';:')."""
    text = " ".join(text.split())
    parts = _SENT_END.split(text)
    if extra:
        parts = [q for p in parts for q in re.split(f"(?<=[{re.escape(extra)}])\\s+", p)]
    return parts


def clean_sentence(raw: str) -> str | None:
    """Normalised sentence if it is usable for speech, else None.

    Keeps 3-20 words and 10-160 characters of [a-z' ]; rejects raw text with symbols that hint
    at code or lists, and words a synthesiser would expand or spell (mr, etc, initials).
    """
    raw = raw.strip()
    if not raw or not _RAW_OK.match(raw):
        return None
    text = normalize_text(raw)
    words = text.split()
    if not (3 <= len(words) <= 20 and 10 <= len(text) <= 160):
        return None
    if not re.fullmatch(r"[a-z' ]+", text):
        return None
    for w in words:
        bare = w.replace("'", "")
        if w in _ABBREV or (len(w) == 1 and w not in "aio") or (
                len(bare) > 1 and not re.search(r"[aeiouy]", bare)):
            return None
    return text


def _fortune_texts(root: Path) -> list[str]:
    """Raw sentences of every fortune file (entries end at '%'; attribution lines dropped)."""
    out = []
    for path in sorted(p for p in root.iterdir() if p.is_file() and not p.suffix):
        body = path.read_text(encoding="utf-8", errors="replace")
        body = re.sub(r".\x08", "", body)  # overstruck (bold/underlined) characters
        for entry in body.split("\n%\n"):
            lines = []
            for line in entry.splitlines():
                if re.match(r"^\s*(--|\u2014)", line):  # "-- Author, Work"
                    break
                lines.append(line)
            out += _split_sentences(" ".join(lines))
    return out


def _wordnet_texts(root: Path) -> list[str]:
    """Quoted example sentences after the gloss ('| definition; "example"') in data.*."""
    out = []
    for path in sorted(root.glob("data.*")):
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(" ") or "|" not in line:  # licence header
                    continue
                gloss = line.split("|", 1)[1]
                for example in re.findall(r'"([^"]+)"', gloss):
                    out += _split_sentences(example)
    return out


def _bible_texts() -> list[str]:
    """KJV verses via the bible-kjv `bible` program, split at sentence and clause ends."""
    exe = shutil.which("bible")
    if exe is None:
        return []
    try:
        res = subprocess.run([exe, "-l100000", "gen1:1-rev22:21"], capture_output=True,
                             text=True, timeout=120, check=True)
    except (subprocess.SubprocessError, OSError) as e:
        log.warning("bible-kjv text unavailable (%s); skipped", e)
        return []
    out = []
    for line in res.stdout.splitlines():
        m = re.match(r"^\s*\d+\s+(.*)$", line)  # "  12 verse text"; headings have no number
        if m:
            out += _split_sentences(m.group(1), extra=";:")
    return out


def collect_sentences() -> dict[str, list[str]]:
    """{source: clean normalised sentences}, deduplicated across sources, in a fixed order."""
    sources = {"fortunes": lambda: _fortune_texts(FORTUNE_DIR),
               "wordnet": lambda: _wordnet_texts(WORDNET_DIR),
               "bible": _bible_texts}
    seen: set[str] = set()
    result = {}
    for name, read in sources.items():
        kept = []
        for raw in read():
            text = clean_sentence(raw)
            if text and text not in seen:
                seen.add(text)
                kept.append(text)
        result[name] = kept
    return result


def split_pools(sentences: list[str], seed: int) -> dict[str, list[str]]:
    """Shuffle with the seed and cut disjoint dev / test / train sentence pools.

    dev and test pools are a fixed share (not depending on the requested hours), so the
    evaluation sentences stay the same when the training set grows.
    """
    pool = sorted(set(sentences))
    random.Random(seed).shuffle(pool)
    n_eval = min(3000, len(pool) // 20)
    return {"test": pool[:n_eval], "dev": pool[n_eval:2 * n_eval], "train": pool[2 * n_eval:]}


# --- plan -------------------------------------------------------------------------------


def plan_split(split: str, pool: list[str], hours: float, voices: list[str],
               seed: int) -> list[dict]:
    """Jobs for one split until the predicted duration reaches `hours`.

    Job i depends only on (seed, split, i): its sentence is pool[i] (the pool is reused with
    new voices if the hours need more utterances than there are sentences).
    """
    if not pool:
        raise RuntimeError(f"no sentences for split {split!r}")
    jobs, total = [], 0.0
    while total < hours * 3600:
        i = len(jobs)
        rng = random.Random(f"{seed}/{split}/{i}")
        job = {"id": f"{split}_{i:06d}", "split": split, "text": pool[i % len(pool)],
               **_draw_voice(rng, voices)}
        jobs.append(job)
        total += _predicted_seconds(job["text"], job)
    return jobs


def plan_corpus(pools: dict[str, list[str]], hours: float, dev_hours: float, test_hours: float,
                seed: int) -> dict[str, list[dict]]:
    """Jobs of all four splits; test_unseen_voice speaks the test sentences with HELDOUT_VOICE."""
    train_voices = voice_names()
    plan = {"train": plan_split("train", pools["train"], hours, train_voices, seed),
            "dev": plan_split("dev", pools["dev"], dev_hours, train_voices, seed),
            "test": plan_split("test", pools["test"], test_hours, train_voices, seed)}
    unseen = []
    for i, job in enumerate(plan["test"]):
        rng = random.Random(f"{seed}/test_unseen_voice/{i}")
        unseen.append({"id": f"test_unseen_voice_{i:06d}", "split": "test_unseen_voice",
                       "text": job["text"], **_draw_voice(rng, voice_names(held_out=True))})
    plan["test_unseen_voice"] = unseen
    return plan


# --- synthesis --------------------------------------------------------------------------


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


Result = "tuple[str, float | None, str | None]"  # (id, duration, error)


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
            script = _write(tmp / "batch.scm", _festival_script(fest, tmp))
            _run(["festival", "--batch", str(script)], timeout=60 + 10 * len(fest))
        for job, final in todo:
            raw = tmp / f"{job['id']}.raw.wav"
            error = None
            if job["engine"] == "espeak":
                error = _run(_espeak_cmd(job, raw), timeout=60)
            elif job["engine"] == "flite":
                error = _run(_flite_cmd(job, raw), timeout=60)
            elif not raw.exists():  # batch failed for it: once more on its own
                script = _write(tmp / f"{job['id']}.scm", _festival_script([job], tmp))
                error = _run(["festival", "--batch", str(script)], timeout=120)
                if error is None and not raw.exists():
                    error = "festival wrote no audio"
            results.append(_finish_one(job, raw, final, error))
    return results


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _init_worker() -> None:
    torch.set_num_threads(1)  # parallelism comes from the worker processes


# --- driver -----------------------------------------------------------------------------


def check_tools() -> None:
    """Raise RuntimeError naming any missing synthesiser, festival voice or text package."""
    missing = [p for p in ("espeak-ng", "flite", "festival") if shutil.which(p) is None]
    missing += [f"festival voice {v}" for v in FESTIVAL_VOICES
                if not any(FESTIVAL_VOICE_DIR.glob(f"*/{v}"))]
    if not FORTUNE_DIR.is_dir():
        missing.append(f"fortunes ({FORTUNE_DIR})")
    if not any(WORDNET_DIR.glob("data.*")):
        missing.append(f"wordnet-base ({WORDNET_DIR}/data.*)")
    if missing:
        raise RuntimeError(f"built-in corpus needs {', '.join(missing)}; install with: {APT_HINT}")


def _check_stamp(out_dir: Path, seed: int) -> None:
    """Refuse to resume into audio made with another seed or plan version (it would be mixed)."""
    stamp = out_dir / "audio" / "builtin_plan.json"
    want = {"seed": seed, "plan_version": PLAN_VERSION}
    if stamp.exists():
        have = json.loads(stamp.read_text())
        if have != want:
            raise ValueError(f"{out_dir}: audio was made with {have}, not {want}; use a new folder")
        return
    stamp.parent.mkdir(parents=True, exist_ok=True)
    tmp = stamp.with_name(stamp.name + ".tmp")
    tmp.write_text(json.dumps(want))
    os.replace(tmp, stamp)


def _chunks(jobs: list[dict], size: int, audio_root: Path):
    for i in range(0, len(jobs), size):
        yield jobs[i:i + size], str(audio_root)


def _synthesise(jobs: list[dict], audio_root: Path, nj: int, progress: bool) -> dict[str, tuple]:
    """Run all jobs over nj processes; {id: (duration or None, error or None)}."""
    size = max(4, min(32, len(jobs) // (nj * 8) or 1))  # big enough to amortise festival startup
    done: dict[str, tuple] = {}
    bar = tqdm(total=len(jobs), desc="builtin tts", unit="utt", disable=not progress)
    chunks = _chunks(jobs, size, audio_root)
    if nj > 1:
        with mp.get_context("fork").Pool(nj, _init_worker) as pool:
            for res in pool.imap_unordered(_synth_chunk, chunks):
                done.update((i, (d, e)) for i, d, e in res)
                bar.update(len(res))
    else:
        _init_worker()
        for chunk in chunks:
            res = _synth_chunk(chunk)
            done.update((i, (d, e)) for i, d, e in res)
            bar.update(len(res))
    bar.close()
    return done


def _say(msg: str, progress: bool) -> None:
    """A summary line: on stderr next to the progress bar, else to the log."""
    if progress:
        print(msg, file=sys.stderr)
    else:
        log.info(msg)


def prepare_builtin(out_dir, hours: float = 2.0, dev_hours: float = 0.15, test_hours: float = 0.15,
                    seed: int = 0, nj: int = 2, progress: bool = True) -> dict[str, Path]:
    """Synthesise the built-in corpus and write its manifests; returns {split: manifest path}.

    out_dir: corpus folder (audio/, manifests/ are made inside; an existing one is resumed).
    hours / dev_hours / test_hours: target audio per split (train is sized to within a few %;
        test_unseen_voice re-speaks the test sentences, so it has the test's length roughly).
    seed: fixes sentences, pools, voices and all per-utterance parameters.
    nj: synthesis worker processes. progress: show a progress bar and a summary on stderr.
    Utterances that fail to synthesise are left out of the manifests and counted.
    """
    check_tools()
    out_dir = Path(out_dir)
    _check_stamp(out_dir, seed)
    by_source = collect_sentences()
    pools = split_pools([s for v in by_source.values() for s in v], seed)
    _say("builtin sentences: " + ", ".join(f"{k} {len(v)}" for k, v in by_source.items())
         + " | pools: " + ", ".join(f"{k} {len(v)}" for k, v in pools.items()), progress)
    plan = plan_corpus(pools, hours, dev_hours, test_hours, seed)
    for split in SPLITS:
        (out_dir / "audio" / split).mkdir(parents=True, exist_ok=True)
        for stale in (out_dir / "audio" / split).glob(".*.tmp"):  # left by a killed run
            stale.unlink()
    done = _synthesise([j for s in SPLITS for j in plan[s]], out_dir / "audio", nj, progress)
    mdir = out_dir / "manifests"
    mdir.mkdir(parents=True, exist_ok=True)
    paths = {split: _write_split(mdir, split, plan[split], done, progress,
                                 {"train": hours, "dev": dev_hours, "test": test_hours}.get(split))
             for split in SPLITS}
    tmp = mdir / "train_text.txt.tmp"
    tmp.write_text("".join(s + "\n" for s in pools["train"]), encoding="utf-8")
    os.replace(tmp, mdir / "train_text.txt")
    return paths


def _write_split(mdir: Path, split: str, jobs: list[dict], done: dict, progress: bool,
                 requested: float | None) -> Path:
    """Write one manifest (plan order) and report its size and failures."""
    entries, failures = [], []
    for job in jobs:
        duration, error = done[job["id"]]
        if error is not None:
            failures.append(error)
            continue
        wav = mdir.parent / "audio" / split / f"{job['id']}.wav"
        entries.append({"id": job["id"], "audio_filepath": os.path.relpath(wav, mdir),
                        "duration": duration, "text": job["text"], "speaker": job["speaker"]})
    path = mdir / f"{split}.jsonl"
    write_manifest(path, entries)
    for err in failures[:5]:
        log.warning("synthesis failed: %s", err)
    hours = sum(e["duration"] for e in entries) / 3600
    want = f" (requested {requested:.3f} h)" if requested is not None else ""
    _say(f"builtin {split}: {len(entries)} utterances, {hours:.3f} h{want}, "
         f"{len(failures)} failed", progress)
    return path


def main(argv: list[str] | None = None) -> None:
    """Command line: python -m data_prep.builtin --out DIR [--hours H] [--seed S] [--nj N]."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="corpus folder (resumed if it exists)")
    ap.add_argument("--hours", type=float, default=2.0, help="training audio, hours")
    ap.add_argument("--dev-hours", type=float, default=0.15)
    ap.add_argument("--test-hours", type=float, default=0.15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nj", type=int, default=2, help="worker processes")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for split, path in prepare_builtin(a.out, a.hours, a.dev_hours, a.test_hours, a.seed, a.nj,
                                       not a.no_progress).items():
        print(f"{split}\t{path}")


if __name__ == "__main__":
    main()
