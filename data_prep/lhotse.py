"""lhotse manifests -> our manifests, and back: any of lhotse's 100+ corpus recipes (the data
library of icefall and NeMo) feeds training here, and our corpora can go to lhotse-based tools.

data.source is a folder of lhotse manifests (JSON Lines, gzipped or not), named as lhotse's
recipes write them::

    <corpus>_recordings_<split>.jsonl.gz  +  <corpus>_supervisions_<split>.jsonl.gz
    <corpus>_cuts_<split>.jsonl.gz                         (a CutSet; used when present)

Every supervision (or every MonoCut) is one utterance: the segment of its recording from its
start, of its duration (manifest "offset" + "duration"; a segment that is the whole recording
is the file itself), its text, its speaker. A cut's supervisions are joined in time order.
Recordings must be files (source type "file"; relative paths are tried against the manifest
folder, then the working directory); other sources (url, command, memory, shar), cut types
other than MonoCut and supervisions without text are rejected with their reason and counted.
The reading needs no lhotse installed (plain JSON).

data.subsets chooses the lhotse splits and names ours: "dev-clean" keeps the name,
"train-clean-100=train" renames, and several "…=train" are concatenated; empty: every split
found, as named. ``export`` writes a manifest as lhotse recordings + supervisions.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Iterator

from asr.data.checks import BAD_LINE, NO_TRANSCRIPT, UNDECODABLE, Checks, Summary

from .common import prepare_splits, source_dir

KINDS = ("cuts", "recordings", "supervisions")
_NAME = re.compile(r"^(?P<corpus>.*?)_?(?P<kind>cuts|recordings|supervisions)_(?P<split>[^/]+?)"
                   r"\.jsonl(?:\.gz)?$")
SAME_SPAN = 0.01  # seconds: a segment this close to its whole recording is the file itself


def read_jsonl(path: Path) -> Iterator[tuple[int, dict | None]]:
    """(line number, object) of a JSON Lines file, gzipped or not; (n, None) for a bad line."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield n, json.loads(line)
                except json.JSONDecodeError:
                    yield n, None


def find_manifests(folder: Path) -> dict[str, dict[str, Path]]:
    """{split: {kind: path}} of the lhotse manifests in folder (cuts, recordings, supervisions)."""
    found: dict[str, dict[str, Path]] = defaultdict(dict)
    for path in sorted(folder.iterdir()):
        m = _NAME.match(path.name)
        if m and path.is_file():
            found[m["split"]][m["kind"]] = path
    usable = {s: k for s, k in found.items() if "cuts" in k or {"recordings", "supervisions"} <= k.keys()}
    if not usable:
        raise FileNotFoundError(f"lhotse: no <corpus>_cuts_<split>.jsonl[.gz] or recordings + "
                                f"supervisions manifests in {folder}")
    return dict(usable)


def split_plan(subsets: list[str], available: list[str]) -> dict[str, list[str]]:
    """{our split: [lhotse splits]} from data.subsets ("a", "a=b"); empty: every split as is."""
    plan: dict[str, list[str]] = defaultdict(list)
    for spec in subsets or available:
        source, _, target = spec.partition("=")
        if source not in available:
            raise ValueError(f"lhotse: no split {source!r} (found: {', '.join(available)})")
        plan[target or source].append(source)
    return dict(plan)


def _audio_path(source: dict, manifest: Path) -> tuple[str | None, str]:
    """(path, "") of a recording source of type "file", else (None, why not)."""
    kind = source.get("type")
    if kind != "file":
        return None, f"source type {kind!r} (only 'file' sources are read)"
    path = Path(source["source"]).expanduser()
    if not path.is_absolute() and not path.exists() and (manifest.parent / path).exists():
        path = manifest.parent / path
    return str(path), ""


def _item(uid: str, recording: dict, start: float, duration: float, text, speaker, where: str,
          manifest: Path, subset: str) -> dict:
    """One utterance item for asr.data.checks.probe (offset only for a part of the file)."""
    sources = recording.get("sources") or [{}]
    audio, problem = _audio_path(sources[0], manifest)
    if audio is None:
        return {"id": uid, "audio": where, "reject": (UNDECODABLE, problem)}
    if text is None or not str(text).strip():
        return {"id": uid, "audio": audio, "report": where, "reject": (NO_TRANSCRIPT, "no text")}
    item = {"id": uid, "audio": audio, "report": f"{audio} [{uid}]", "text": str(text),
            "speaker": speaker or "", "subset": subset}
    whole = float(recording.get("duration") or 0.0)
    if start > 0 or abs(duration - whole) > SAME_SPAN:
        item.update(offset=float(start), duration=float(duration))
    return item


def cut_items(path: Path, subset: str) -> Iterator[dict]:
    """Items of a CutSet manifest: one per MonoCut, its supervisions' texts joined."""
    for n, cut in read_jsonl(path):
        where = f"{path}:{n}"
        if cut is None or "id" not in cut:
            yield {"id": where, "audio": where, "reject": (BAD_LINE, "not a lhotse cut")}
            continue
        if cut.get("type", "MonoCut") != "MonoCut" or "recording" not in cut:
            yield {"id": cut["id"], "audio": where,
                   "reject": (BAD_LINE, f"cut type {cut.get('type')!r} (only MonoCut with a recording)")}
            continue
        sups = sorted(cut.get("supervisions") or [], key=lambda s: s.get("start", 0.0))
        texts = [s.get("text") for s in sups if s.get("text")]
        yield _item(cut["id"], cut["recording"], float(cut.get("start", 0.0)), float(cut["duration"]),
                    " ".join(texts) if texts else None, sups[0].get("speaker") if sups else "",
                    where, path, subset)


def supervision_items(recordings: Path, supervisions: Path, subset: str) -> Iterator[dict]:
    """Items of a RecordingSet + SupervisionSet pair: one per supervision."""
    recs = {r["id"]: r for _, r in read_jsonl(recordings) if r and "id" in r}
    for n, sup in read_jsonl(supervisions):
        where = f"{supervisions}:{n}"
        if sup is None or "id" not in sup:
            yield {"id": where, "audio": where, "reject": (BAD_LINE, "not a lhotse supervision")}
            continue
        rec = recs.get(sup.get("recording_id"))
        if rec is None:
            yield {"id": sup["id"], "audio": where,
                   "reject": (BAD_LINE, f"recording {sup.get('recording_id')!r} is not in {recordings.name}")}
            continue
        yield _item(sup["id"], rec, float(sup.get("start", 0.0)), float(sup["duration"]),
                    sup.get("text"), sup.get("speaker"), where, supervisions, subset)


def split_items(manifests: dict[str, Path], subset: str) -> Iterator[dict]:
    if "cuts" in manifests:
        return cut_items(manifests["cuts"], subset)
    return supervision_items(manifests["recordings"], manifests["supervisions"], subset)


def prepare(cfg, progress: bool = True, summary: Summary | None = None) -> Summary:
    folder = source_dir(cfg, "lhotse")
    found = find_manifests(folder)
    plan = split_plan(list(cfg.data.subsets), sorted(found))
    summary = summary or Summary("lhotse")

    def items(sources: list[str]):
        for name in sources:
            yield from split_items(found[name], name)

    splits = {ours: (lambda s=sources: items(s)) for ours, sources in plan.items()}
    prepare_splits(cfg.data.root, splits, Checks.from_config(cfg), summary, cfg.data.nj, progress,
                   train_split=cfg.data.train_split)
    return summary


# --- export ------------------------------------------------------------------------------------

def _write_jsonl_gz(path: Path, objects) -> int:
    from asr.utils import atomic_path
    n = 0
    with atomic_path(path) as tmp:
        with gzip.open(tmp, "wt", encoding="utf-8") as f:
            for obj in objects:
                f.write(json.dumps(obj, ensure_ascii=False) + "\n")
                n += 1
    return n


def export(manifest: str | Path, out_dir: str | Path, corpus: str = "asr",
           split: str | None = None) -> tuple[Path, Path, int]:
    """Write a manifest as <corpus>_recordings_<split>.jsonl.gz and
    <corpus>_supervisions_<split>.jsonl.gz (split: the manifest's name); returns both paths and
    the number of supervisions. Each audio file is one recording (its header read once)."""
    import soundfile as sf

    from asr.data.manifest import read_manifest
    manifest, out = Path(manifest), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    split = split or manifest.stem
    entries = list(read_manifest(manifest))
    recordings: dict[str, dict] = {}
    for e in entries:
        path = str(Path(e["audio_filepath"]).absolute())
        if path not in recordings:
            info = sf.info(path)
            recordings[path] = {"id": f"{Path(path).stem}-{len(recordings):06d}",
                                "sources": [{"type": "file", "channels": list(range(info.channels)),
                                             "source": path}],
                                "sampling_rate": info.samplerate, "num_samples": info.frames,
                                "duration": info.frames / info.samplerate,
                                "channel_ids": list(range(info.channels))}

    def supervisions():
        for e in entries:
            rec = recordings[str(Path(e["audio_filepath"]).absolute())]
            sup = {"id": str(e["id"]), "recording_id": rec["id"], "start": float(e.get("offset", 0.0)),
                   "duration": float(e.get("duration") or rec["duration"]), "channel": 0,
                   "text": e.get("text", "")}
            if e.get("speaker"):
                sup["speaker"] = e["speaker"]
            yield sup

    rec_path = out / f"{corpus}_recordings_{split}.jsonl.gz"
    sup_path = out / f"{corpus}_supervisions_{split}.jsonl.gz"
    _write_jsonl_gz(rec_path, recordings.values())
    n = _write_jsonl_gz(sup_path, supervisions())
    return rec_path, sup_path, n
