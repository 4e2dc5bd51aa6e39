"""The built-in mixture: real recorded speech from Debian's game-data packages added to the
synthesised corpus, every source through the same random recording channels.

A model trained on synthesisers alone learns synthesisers. `builtin.real` names the real corpora
to mix in and how many times each is repeated in training, e.g. ``{queen: 2, hedgewars: 2}``:

1. fetch (data_prep.real_corpora): each corpus's package is found in data.source (a folder
   of .debs) or <root>/download/debs, else fetched there with `apt-get download` (no root needed);
2. import: the corpus's own importer (data_prep/<corpus>.py) writes <root>/real/<corpus>/, once;
   its entries are gathered into manifests/all_real.jsonl with ids and speakers prefixed by the
   corpus ("queen:LOLA"), so speakers of different games never merge;
3. hold out: clips whose transcripts are mostly no English words (an ape's grunts, a parrot)
   are dropped; whole speakers of every corpus with several speakers go to test_real /
   dev_real, each corpus in proportion to its hours (data_prep.heldout.choose_per_source), never
   one whose lines are largely invented words; held-out lines are removed from every training
   source and from the language-model text;
4. stretch (data_prep.speed_copies): with builtin.real_speed_factors (e.g. [0.9, 1.1]), every
   real training utterance gets one speed-perturbed copy per factor (Kaldi's speed perturbation:
   resampled, so tempo, pitch and formants move together: new voices of the same lines), id
   "<id>-sp0.9", speaker "<speaker>-sp0.9", written once to <root>/audio/speed/<id>-sp0.9.flac;
   made from the training part only, after the hold-out, so no copy is of a test or dev speaker
   or line. Copies whose source left the training part are deleted;
5. mix: train_mix = the synthetic train split + each real corpus's training part (its speed
   copies included) repeated `times` (a fractional part repeats a seeded share of its
   utterances); each copy of every source is passed through a random channel with probability
   builtin.channel_share (asr.data.effects.random_channel: band limit, codec, telephone, noise,
   room), so a degraded sound never means "real" and a clean one "synthetic"; dev_mix = dev +
   dev_real;
6. degraded real test sets: builtin.real_degraded (e.g. [telephone]) makes test_real_<condition>
   from test_real with data_prep.degrade, as data.degraded makes test_telephone from test;
7. language-model text: manifests/train_text.txt becomes the synthetic corpus's training
   sentences + the real training lines + builtin.lm_sources (GCIDE, manual pages), less every
   held-out line (data_prep.builtin.text.lm_sentences).

Every draw depends on (data.seed, utterance id) only; channel and speed copies that exist are
kept, so a run resumes, and those no longer in train_mix are deleted. A copy whose source
audio cannot be read is skipped and counted.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import zlib
from collections import Counter
from pathlib import Path

import torch
from tqdm import tqdm

from asr.data import effects as A
from asr.data.audio import AudioError, load_audio, write_wav
from asr.data.manifest import write_manifest
from asr.utils import WorkerPool, atomic_write_text
from data_prep.degrade import make_degraded
from data_prep.heldout import choose_per_source, read_as_written, split_by_speaker_and_line
# steps 1-2 (fetch, import) and 4 (stretch) have modules of their own; tests name
# debian_package and fetch_package from here, as steps of the mixture
from data_prep.real_corpora import debian_package, fetch_package  # noqa: F401
from data_prep.real_corpora import REAL_SOURCES, import_real
from data_prep.speed_copies import make_speed_copies

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
TRAIN, DEV, TRAIN_TEXT = "train_mix", "dev_mix", "train_text.txt"
SYNTHETIC_TEXT = "synthetic_text.txt"  # train_text.txt as the synthetic corpus wrote it
MAX_INVENTED = 0.5            # of an utterance's words, see drop_invented
MAX_HELDOUT_INVENTED = 0.04   # of a held-out speaker's words, see unlikely_test_speakers


# --- 3. what counts as speech ------------------------------------------------------------------

def invented_share(text: str, vocab: set[str]) -> float:
    """Share of a transcript's words that are no English word (not in vocab)."""
    words = text.split()
    return sum(w not in vocab for w in words) / max(1, len(words))


def drop_invented(entries: list[dict], vocab: set[str]) -> tuple[list[dict], int]:
    """Entries whose transcripts are mostly English words; and how many were not (ape noises,
    barks, a tribe's invented language: "ungh chunga kunga")."""
    kept = [e for e in entries if invented_share(e["text"], vocab) <= MAX_INVENTED]
    return kept, len(entries) - len(kept)


def unlikely_test_speakers(entries: list[dict], vocab: set[str]) -> set[str]:
    """Speakers with more than MAX_HELDOUT_INVENTED of their words invented: a parrot or a
    mumbling robot is no test of English speech recognition, so they are never held out."""
    words: Counter = Counter()
    invented: Counter = Counter()
    for e in entries:
        ws = e["text"].split()
        words[e["speaker"]] += len(ws)
        invented[e["speaker"]] += sum(w not in vocab for w in ws)
    return {s for s in words if invented[s] > MAX_HELDOUT_INVENTED * words[s]}


# --- 5. mix ------------------------------------------------------------------------------------

def _draw(seed: int, key: str) -> random.Random:
    return random.Random(f"{seed}/{key}")


def repeats(entry_id: str, times: float, seed: int) -> int:
    """How many copies of an utterance train_mix holds: floor(times), plus one more for a seeded
    share (times - floor) of the utterances."""
    whole = int(times)
    return whole + (_draw(seed, f"repeat/{entry_id}").random() < times - whole)


def plan_copies(entries: list[dict], times: float, share: float, seed: int) -> list[dict]:
    """The train_mix entries of one source: each utterance `repeats` times (copy k > 0 gets the
    id suffix _r<k>); a copy marked "channel_seed" goes through a random channel."""
    out = []
    for e in entries:
        for k in range(repeats(e["id"], times, seed)):
            uid = e["id"] if k == 0 else f"{e['id']}_r{k}"
            copy_ = dict(e, id=uid)
            if _draw(seed, f"channel/{uid}").random() < share:
                copy_["channel_seed"] = zlib.crc32(f"{seed}/{uid}".encode())
            out.append(copy_)
    return out


_talkers: list[str] = []  # babble talkers: audio of the split, per worker


def _init_worker(talkers: list[str]) -> None:
    global _talkers
    _talkers = talkers
    torch.set_num_threads(1)


def _babble(generator: torch.Generator) -> torch.Tensor:
    try:
        return load_audio(_talkers[A.randint(generator, 0, len(_talkers) - 1)], SAMPLE_RATE)
    except AudioError:
        return torch.zeros(0)


def _channel_copy(job: tuple[str, str, int]) -> tuple[str, str | None, str | None]:
    """(source audio, target wav, seed) -> (target, stages, error); an existing target is kept."""
    source, target, seed = job
    if os.path.exists(target):
        return target, None, None
    try:
        wav = load_audio(source, SAMPLE_RATE)
    except AudioError as e:
        return target, None, str(e)
    out, stages = A.random_channel(wav, SAMPLE_RATE, torch.Generator().manual_seed(seed),
                                   babble=_babble if _talkers else None)
    write_wav(target, out, SAMPLE_RATE)
    return target, "+".join(stages) or "none", None


def render_channels(entries: list[dict], mdir: Path, nj: int, progress: bool) -> tuple[list, Counter]:
    """Write the channel copies of entries (those with channel_seed) to <root>/audio/channel/
    (any other file there is deleted); returns the entries pointing at them and the count of
    copies skipped (unreadable source)."""
    out_dir = mdir.parent / "audio" / "channel"
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs, by_target = [], {}
    for e in entries:
        if "channel_seed" in e:
            target = str(out_dir / f"{e['id']}.wav")
            source = e["audio_filepath"]
            source = source if os.path.isabs(source) else str(mdir / source)
            jobs.append((source, target, e["channel_seed"]))
            by_target[target] = e
    for stale in [p for p in out_dir.iterdir() if p.is_file() and str(p) not in by_target]:
        stale.unlink()  # of utterances no longer in train_mix (held out anew, factors changed)
    talkers = sorted({j[0] for j in jobs})[:2000]
    failed: Counter = Counter()
    with WorkerPool(nj, _init_worker, (talkers,)) as workers, \
            tqdm(total=len(jobs), desc="channels", unit="utt", disable=not progress) as bar:
        for target, stages, error in workers.imap(_channel_copy, jobs, ordered=False, chunksize=16):
            bar.update()
            e = by_target[target]
            if error is not None:
                log.warning("channel copy skipped: %s", error)
                failed["unreadable source audio"] += 1
                e["skip"] = True
                continue
            e["audio_filepath"] = os.path.relpath(target, mdir)
    kept = []
    for e in entries:
        if not e.pop("skip", False):
            e.pop("channel_seed", None)
            kept.append(e)
    return kept, failed


def read_split(mdir: Path, split: str) -> list[dict]:
    return read_as_written(mdir / f"{split}.jsonl")


def hours(entries: list[dict]) -> float:
    return sum(float(e["duration"]) for e in entries) / 3600


def make_mixture(cfg, progress: bool | None = None) -> dict:
    """Everything above, after the synthetic corpus exists in data.root; returns a report
    {source: {utterances, hours, speakers}, ...} that is also written to manifests/mixture.json."""
    from data_prep.builtin.text import lm_sentences, source_sentences, vocabulary
    progress = sys.stderr.isatty() if progress is None else progress
    d, b = cfg.data, cfg.builtin
    root = Path(d.root)
    mdir = root / "manifests"
    extra_text = source_sentences(b.lm_sources)
    synthetic_text = _synthetic_text(mdir)
    vocab = vocabulary(synthetic_text, extra_text)
    real, invented = drop_invented(import_real(cfg, progress), vocab)
    test_spk, dev_spk, none_held = choose_per_source(
        real, b.real_test_hours, b.real_dev_hours, d.seed,
        exclude=unlikely_test_speakers(real, vocab))
    held, dropped = split_by_speaker_and_line(real, test_spk, dev_spk)
    dropped["transcript mostly invented words (animal sounds, invented language)"] = invented
    write_manifest(mdir / "test_real.jsonl", held["test"])
    write_manifest(mdir / "dev_real.jsonl", held["dev"])
    write_manifest(mdir / "train_real.jsonl", held["train"])
    heldout_lines = {e["text"] for s in ("test", "dev") for e in held[s]}
    synthetic = read_split(mdir, "train")
    kept_synthetic = [e for e in synthetic if e["text"] not in heldout_lines]
    dropped["synthetic utterance speaking a real held-out line"] = len(synthetic) - len(kept_synthetic)
    planned = plan_copies(kept_synthetic, 1.0, b.channel_share, d.seed)
    by_corpus: dict[str, list[dict]] = {}
    for e in held["train"]:
        by_corpus.setdefault(e["speaker"].split(":", 1)[0], []).append(e)
    # copies of the training part only (never of a held-out speaker or line), of what trains
    mixed_in = [e for corpus, times in b.real.items() if times > 0
                for e in by_corpus.get(corpus, [])]
    stretched, unread = make_speed_copies(mixed_in, b.real_speed_factors, mdir, d.nj, progress)
    for e in stretched:
        by_corpus[e["speaker"].split(":", 1)[0]].append(e)
    for corpus, times in b.real.items():
        planned += plan_copies(by_corpus.get(corpus, []), times, b.channel_share, d.seed)
    mixed, failed = render_channels(planned, mdir, d.nj, progress)
    write_manifest(mdir / f"{TRAIN}.jsonl", mixed)
    write_manifest(mdir / f"{DEV}.jsonl", read_split(mdir, "dev") + held["dev"])
    heldout = {"test_real": held["test"], "dev_real": held["dev"]}
    for condition in b.real_degraded:
        path = make_degraded(root, "test_real", condition, d.seed, d.nj, progress)
        heldout[path.stem] = read_as_written(path)
    lm_text = lm_sentences(synthetic_text, [e["text"] for e in held["train"]], extra_text,
                           exclude=heldout_lines | _synthetic_heldout_lines(mdir))
    atomic_write_text(mdir / TRAIN_TEXT, "".join(s + "\n" for s in lm_text))
    report = _report(mixed, heldout, dropped + unread + failed, none_held, len(lm_text))
    report["real_speed_copies"] = {"factors": list(b.real_speed_factors),
                                   "utterances": len(stretched), "hours": round(hours(stretched), 3)}
    atomic_write_text(mdir / "mixture.json", json.dumps(report, indent=1) + "\n")
    return report


def _synthetic_text(mdir: Path) -> Path:
    """The synthetic corpus's training sentences: the base of the vocabulary and of the LM text.
    Never train_text.txt once the mixture has rewritten it: its real lines would count as
    English words on a re-run and move the held-out speakers. (train_text.txt for a corpus made
    before synthetic_text.txt existed.)"""
    path = mdir / SYNTHETIC_TEXT
    return path if path.exists() else mdir / TRAIN_TEXT


def _synthetic_heldout_lines(mdir: Path) -> set[str]:
    """Texts of the synthetic dev and test splits (kept out of the language-model text)."""
    return {e["text"] for s in ("dev", "test") if (mdir / f"{s}.jsonl").exists()
            for e in read_split(mdir, s)}


def _report(mixed: list[dict], heldout: dict[str, list[dict]], dropped: Counter,
            none_held: list[str], lm_lines: int) -> dict:
    """Utterances, hours, speakers, channel and speed copies per source of train_mix, and the
    held-out splits (test_real, dev_real, test_real_<condition>)."""
    report: dict = {"train_mix": {}}
    for e in mixed:
        source = e["speaker"].split(":", 1)[0]
        source = source if source in REAL_SOURCES else "synthetic:" + source
        r = report["train_mix"].setdefault(source, {"utterances": 0, "hours": 0.0, "channel": 0,
                                                    "speed": 0, "speakers": set()})
        r["utterances"] += 1
        r["hours"] += float(e["duration"]) / 3600
        r["channel"] += e["audio_filepath"].startswith(os.path.join("..", "audio", "channel"))
        r["speed"] += "speed" in e
        r["speakers"].add(e["speaker"])
    for r in report["train_mix"].values():
        r["hours"], r["speakers"] = round(r["hours"], 3), len(r["speakers"])
    for split, entries in heldout.items():
        report[split] = {"utterances": len(entries), "hours": round(hours(entries), 3),
                         "speakers": sorted({e["speaker"] for e in entries})}
    report["dropped"] = dict(dropped)
    report["no_heldout_speakers"] = none_held
    report["lm_text_lines"] = lm_lines
    return report


def print_report(report: dict) -> None:
    """The mixture's make-up on stderr, one line per source."""
    for source, r in sorted(report["train_mix"].items()):
        print(f"train_mix {source}: {r['utterances']} utterances, {r['hours']} h, {r['speakers']} "
              f"speakers, {r['channel']} through a channel, {r['speed']} speed copies",
              file=sys.stderr)
    r = report["real_speed_copies"]
    if r["factors"]:
        print(f"real speed copies (x{', x'.join(map(str, r['factors']))}): {r['utterances']} "
              f"utterances, {r['hours']} h", file=sys.stderr)
    for split in [s for s in report if s.startswith(("test_real", "dev_real"))]:
        r = report[split]
        print(f"{split}: {r['utterances']} utterances, {r['hours']} h, speakers "
              f"{', '.join(r['speakers'])}", file=sys.stderr)
    for reason, n in report["dropped"].items():
        print(f"left out: {n} {reason}", file=sys.stderr)
    if report["no_heldout_speakers"]:
        print(f"no held-out speakers from {', '.join(report['no_heldout_speakers'])} (their voices "
              "share their lines: holding one out would empty its training part)", file=sys.stderr)
    print(f"language-model text: {report['lm_text_lines']} lines", file=sys.stderr)
