"""Kaldi data directories: import (wav.scp, text, utt2spk, segments -> manifests) and export.

Import: data.source is one data dir or a folder of them (e.g. ``data/`` with ``train/``,
``dev/``, ``test/``: each becomes the split of its name; a single dir is split with
data.dev_fraction / data.test_fraction). Files read::

    wav.scp    <recording-id> <path>              or  <recording-id> <command> |
    text       <utterance-id> <transcript>
    utt2spk    <utterance-id> <speaker>           (optional; else the speaker is unknown)
    segments   <utterance-id> <recording-id> <start s> <end s>   (optional; end -1 = to the end)

A path is used in place (relative paths are taken from the Kaldi recipe folder, the data dir's
grandparent, as Kaldi runs there). A piped entry (``sox a.wav -t wav - |``,
``flac -c -d -s a.flac |``, ``sph2pipe -f wav a.sph |``) is run once with ``bash -c`` in that
folder, and its output is written to ``<data.root>/audio/<split>/<recording>.wav``.
**Trust:** like Kaldi itself, this executes the commands written in wav.scp with your
permissions: import only data dirs you trust. With segments, each utterance is cut from its
recording into ``<data.root>/audio/<split>/<utterance>.wav``. Existing outputs are kept
(re-runs resume); every file is written atomically.

Export (``asr export-kaldi MANIFEST DIR``): wav.scp (WAV paths as they are, other formats
through ``sox PATH -t wav - |``), text, utt2spk, spk2utt, utt2dur; utterance ids get the
speaker as prefix when they lack it, as Kaldi's sorting rules need.
"""

from __future__ import annotations

import io
import shlex
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.data.manifest import read_manifest
from asr.data.checks import Checks, MISSING, Summary, UNDECODABLE, probe
from asr.utils import atomic_open, atomic_path, pool_map

from .common import source_dir, stride_split, write_split

PIPE_TIMEOUT = 3600


def is_data_dir(d: Path) -> bool:
    return (d / "wav.scp").is_file() and (d / "text").is_file()


def read_table(path: Path) -> dict[str, str]:
    """'key rest of line' per line -> {key: rest}; a missing file -> {}."""
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            key, _, rest = line.strip().partition(" ")
            if key:
                out[key] = rest.strip()
    return out


def _atomic_wav(path: Path, data: np.ndarray, rate: int) -> None:
    with atomic_path(path, fsync=False) as tmp:
        sf.write(str(tmp), data, rate, subtype="PCM_16", format="WAV")


def _bad(utts: list, kind: str, detail: str, report: str) -> list:
    return [("bad", f"{report} [{u['id']}]" if len(utts) > 1 else report, kind, detail) for u in utts]


def probe_recording(item: dict, checks: Checks) -> list[tuple]:
    """Materialise one recording (run its pipe / read its file), cut its segments, check each."""
    spec, base, out_dir = item["spec"], Path(item["base"]), Path(item["out_dir"])
    utts = item["utts"]
    report = f"{item['data_dir']}/wav.scp:{item['rec']}"
    if spec.endswith("|"):
        path = out_dir / f"{item['rec']}.wav"
        if not path.exists():
            try:
                r = subprocess.run(["bash", "-c", spec[:-1].strip()], cwd=base, capture_output=True,
                                   timeout=PIPE_TIMEOUT)
            except subprocess.TimeoutExpired:
                return _bad(utts, UNDECODABLE, f"command timed out: {spec}", report)
            if r.returncode != 0 or not r.stdout:
                err = r.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
                return _bad(utts, UNDECODABLE, f"command failed (exit {r.returncode}): {spec} {err[0]}",
                            report)
            try:
                data, rate = sf.read(io.BytesIO(r.stdout), dtype="float32", always_2d=True)
            except Exception as e:
                return _bad(utts, UNDECODABLE, f"command output is not audio ({e}): {spec}", report)
            _atomic_wav(path, data, rate)
    else:
        path = Path(spec)
        if not path.is_absolute():
            path = base / path
    results = []
    if item["segmented"]:
        recording = None
        for u in utts:
            cut = out_dir / f"{u['id']}.wav"
            if not cut.exists():
                if recording is None:
                    try:
                        recording = sf.read(str(path), dtype="float32", always_2d=True)
                    except Exception as e:
                        return results + _bad(utts[len(results):], MISSING if not path.exists()
                                              else UNDECODABLE, str(e), str(path))
                data, rate = recording
                start = int(round(u["start"] * rate))
                end = len(data) if u["end"] < 0 else min(len(data), int(round(u["end"] * rate)))
                if end <= start:
                    results.append(("bad", f"{report} [{u['id']}]", "bad segment",
                                    f"{u['start']}-{u['end']} s of a {len(data) / rate:.2f} s recording"))
                    continue
                _atomic_wav(cut, data[start:end], rate)
            results += probe({**u, "audio": str(cut)}, checks)
        return results
    return [r for u in utts for r in probe({**u, "audio": str(path)}, checks)]


def recordings(data_dir: Path, split_of, out_root: Path, bad_split: str):
    """Items (one per recording, with its utterances) of a data dir, in wav.scp order.
    split_of(index) -> split name of the index-th recording; problems found while reading the
    tables (bad segments, utterances without a recording) are items of bad_split."""
    wav = read_table(data_dir / "wav.scp")
    text = read_table(data_dir / "text")
    spk = read_table(data_dir / "utt2spk")
    base = data_dir.absolute().parent.parent
    by_rec: dict[str, list] = defaultdict(list)
    segmented = (data_dir / "segments").is_file()
    if segmented:
        for utt, rest in read_table(data_dir / "segments").items():
            parts = rest.split()
            try:
                by_rec[parts[0]].append({"id": utt, "start": float(parts[1]), "end": float(parts[2])})
            except (IndexError, ValueError):
                yield {"split": bad_split, "bad": (f"{data_dir}/segments:{utt}", "bad segment", rest)}
    else:
        for utt in text:
            by_rec[utt].append({"id": utt})
    for i, (rec, spec) in enumerate(wav.items()):
        utts = by_rec.pop(rec, [])
        for u in utts:
            u.update(text=text.get(u["id"], ""), speaker=spk.get(u["id"], ""))
            if u["id"] not in text:
                u["reject"] = ("no transcript", f"{u['id']} is not in {data_dir}/text")
        if not utts:
            continue
        split = split_of(i)
        yield {"split": split, "rec": rec, "spec": spec, "base": str(base), "segmented": segmented,
               "out_dir": str(out_root / split), "utts": utts, "data_dir": str(data_dir)}
    for rec, utts in by_rec.items():  # utterances whose recording is not in wav.scp
        for u in utts:
            yield {"split": bad_split,
                   "bad": (f"{data_dir}/text:{u['id']}", MISSING, f"recording {rec} is not in wav.scp")}


def _probe_any(item: dict, checks: Checks) -> list[tuple]:
    if "bad" in item:
        return [("bad", *item["bad"])]
    return probe_recording(item, checks)


def prepare(cfg, progress: bool = True, summary: Summary | None = None) -> Summary:
    source = source_dir(cfg, "kaldi")
    root = Path(cfg.data.root)
    summary = summary or Summary("kaldi")
    checks = Checks.from_config(cfg)
    if is_data_dir(source):
        d, t = cfg.data.dev_fraction, cfg.data.test_fraction
        jobs = [(s, source, lambda i: stride_split(i, d, t), "train") for s in ("train", "dev", "test")]
    else:
        dirs = sorted(p for p in source.iterdir() if p.is_dir() and is_data_dir(p))
        if not dirs:
            raise FileNotFoundError(f"kaldi: {source} is no data dir (wav.scp + text) and holds none")
        jobs = [(p.name, p, lambda i, n=p.name: n, p.name) for p in dirs]
    for split, data_dir, split_of, bad_split in jobs:
        items = (it for it in recordings(data_dir, split_of, root / "audio", bad_split)
                 if it["split"] == split)
        results = pool_map(_probe_any, items, checks, cfg.data.nj)
        if split == cfg.data.train_split:
            with atomic_open(root / "manifests" / "train_text.txt") as text_out:
                write_split(root, split, results, summary, text_out, progress)
        else:
            write_split(root, split, results, summary, None, progress)
    return summary


# --- export ------------------------------------------------------------------------------------

def export(manifest: str | Path, out_dir: str | Path) -> int:
    """Write a Kaldi data dir for a manifest; returns the number of utterances. Entries with an
    "offset" (segments of long recordings) become a `segments` file over their recordings."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, offsets = [], {}
    for e in read_manifest(manifest):
        uid = str(e["id"]).replace(" ", "_")
        spk = str(e.get("speaker") or "").replace(" ", "_")
        if spk and not uid.startswith(spk):
            uid = f"{spk}-{uid}"
        rows.append((uid, spk or uid, str(Path(e["audio_filepath"]).absolute()),
                     " ".join(str(e.get("text", "")).split()), float(e.get("duration", 0.0))))
        if "offset" in e:
            offsets[uid] = float(e["offset"])
    rows.sort(key=lambda r: r[0].encode())  # LC_ALL=C order
    if len({r[0] for r in rows}) != len(rows):
        raise ValueError(f"{manifest}: duplicate utterance ids")

    def scp(path: str) -> str:
        if path.lower().endswith(".wav") and not any(c.isspace() for c in path):
            return path
        return f"sox {shlex.quote(path)} -t wav -b 16 - |"

    if offsets:  # utterances are segments of recordings (a whole file: 0 to the end, -1)
        recs = {p: f"rec{i:06d}" for i, p in enumerate(sorted({p for _, _, p, _, _ in rows}))}
        tables = {"wav.scp": [f"{r} {scp(p)}" for p, r in recs.items()],
                  "segments": [f"{u} {recs[p]} {offsets[u]:.3f} {offsets[u] + d:.3f}"
                               if u in offsets else f"{u} {recs[p]} 0 -1" for u, _, p, _, d in rows]}
    else:
        tables = {"wav.scp": [f"{u} {scp(p)}" for u, _, p, _, _ in rows]}
    tables.update({"text": [f"{u} {t}" for u, _, _, t, _ in rows],
                   "utt2spk": [f"{u} {s}" for u, s, _, _, _ in rows],
                   "utt2dur": [f"{u} {d:.3f}" for u, _, _, _, d in rows]})
    spk2utt: dict[str, list] = defaultdict(list)
    for u, s, _, _, _ in rows:
        spk2utt[s].append(u)
    tables["spk2utt"] = [f"{s} {' '.join(us)}" for s, us in sorted(spk2utt.items(), key=lambda x: x[0].encode())]
    for name, lines in tables.items():
        with atomic_open(out / name) as w:
            w.write("".join(line + "\n" for line in lines))
    return len(rows)
