"""Voices of the built-in corpus and the plan that assigns them: the espeak-ng / flite / festival
voice inventory, the held-out voice, seeded per-utterance parameters, duration prediction, and
the per-split job lists (plan_split, plan_corpus) sized by predicted hours."""

from __future__ import annotations

import random

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
