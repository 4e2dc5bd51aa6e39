"""TIMIT (LDC93S1) in its original layout -> phone (or word) manifests.

data.source is the folder holding TRAIN/ and TEST/ (any case; or a folder above it)::

    TIMIT/TRAIN/DR1/FCJF0/SI1027.WAV   NIST SPHERE header (1024 bytes) + 16 kHz 16-bit PCM
    TIMIT/TRAIN/DR1/FCJF0/SI1027.PHN   "<start sample> <end sample> <phone>" per line (61 phones)
    TIMIT/TRAIN/DR1/FCJF0/SI1027.WRD   "<start> <end> <word>"
    TIMIT/TRAIN/DR1/FCJF0/SI1027.TXT   "<start> <end> The sentence."

The SA sentences (spoken by every speaker) are left out, as is standard. Splits:
``train`` = TRAIN (462 speakers, 3696 utterances); ``dev`` = the 50-speaker development set
(400 utterances) and ``test`` = the 24-speaker core test set (192 utterances), both from TEST
(the lists of Kaldi's egs/timit/s5, after Halberstadt 1998). With data.units=phone the text is
the .PHN phones mapped to data.phone_set (61, 48 or 39; asr.text.vocab); with data.units=char it is
the normalised .TXT sentence. speaker = speaker folder (e.g. fcjf0), subset = dialect region.
"""

from __future__ import annotations

import re
from pathlib import Path

from asr.text.phones import fold_phones
from asr.data.checks import BAD_UTF8, Checks, NO_TRANSCRIPT, Summary

from .common import find_dir, prepare_splits, source_dir

# The core test set: 2 male + 1 female speakers of each dialect region.
CORE_TEST_SPEAKERS = {
    "dr1": ("mdab0", "mwbt0", "felc0"), "dr2": ("mtas1", "mwew0", "fpas0"),
    "dr3": ("mjmp0", "mlnt0", "fpkt0"), "dr4": ("mlll0", "mtls0", "fjlm0"),
    "dr5": ("mbpm0", "mklt0", "fnlp0"), "dr6": ("mcmj0", "mjdh0", "fmgd0"),
    "dr7": ("mgrt0", "mnjm0", "fdhc0"), "dr8": ("mjln0", "mpam0", "fmld0"),
}
CORE_TEST = frozenset(s for v in CORE_TEST_SPEAKERS.values() for s in v)
DEV_SPEAKERS = frozenset((
    "faks0 fdac1 fjem0 mgwt0 mjar0 mmdb1 mmdm2 mpdf0 fcmh0 fkms0 mbdg0 mbwm0 mcsh0 fadg0 "
    "fdms0 fedw0 mgjf0 mglb0 mrtk0 mtaa0 mtdt0 mthc0 mwjg0 fnmr0 frew0 fsem0 mbns0 mmjr0 "
    "mdls0 mdlf0 mdvc0 mers0 fmah0 fdrw0 mrcs0 mrjm4 fcal1 mmwh0 fjsj0 majc0 mjsw0 mreb0 "
    "fgjd0 fjmg0 mroa0 mteb0 mjfc0 mrjr0 fmml0 mrws1").split())

_UTT = re.compile(r"^(s[aix]\d+)\.wav$", re.I)


def _child(d: Path, name: str) -> Path | None:
    """d/name, whatever the case of name on disk."""
    for p in d.iterdir():
        if p.name.lower() == name:
            return p
    return None


def find_root(source: Path) -> Path:
    found = find_dir(source, lambda d: _child(d, "train") is not None and _child(d, "test") is not None)
    if found is None:
        raise FileNotFoundError(f"timit: no TRAIN/ and TEST/ folders in {source}")
    return found


def _sibling(wav: Path, ext: str) -> Path | None:
    for cand in (wav.with_suffix(ext.upper()), wav.with_suffix(ext.lower())):
        if cand.is_file():
            return cand
    return None


def read_phones(path: Path) -> list[str]:
    return [line.split()[2] for line in path.read_text(encoding="ascii").splitlines()
            if len(line.split()) >= 3]


def _text(wav: Path, units: str, phone_set: int) -> tuple[str | None, tuple | None]:
    ext = ".PHN" if units == "phone" else ".TXT"
    path = _sibling(wav, ext)
    if path is None:
        return None, (NO_TRANSCRIPT, f"{wav.stem}{ext} is missing")
    try:
        if units == "phone":
            return " ".join(fold_phones(read_phones(path), phone_set)), None
        parts = path.read_text(encoding="ascii").split(maxsplit=2)
        return (parts[2] if len(parts) == 3 else ""), None
    except UnicodeDecodeError as e:
        return None, (BAD_UTF8, f"{path.name}: byte at offset {e.start}")
    except ValueError as e:
        return None, ("bad phone transcript", f"{path.name}: {e}")


def items(root: Path, part: str, speakers: frozenset | None, units: str, phone_set: int):
    """Utterances of TRAIN or TEST (restricted to speakers), SA sentences left out."""
    part_dir = _child(root, part)
    for dr in sorted(p for p in part_dir.iterdir() if p.is_dir()):
        for spk_dir in sorted(p for p in dr.iterdir() if p.is_dir()):
            spk = spk_dir.name.lower()
            if speakers is not None and spk not in speakers:
                continue
            for wav in sorted(spk_dir.iterdir()):
                m = _UTT.match(wav.name)
                if not m or m.group(1).lower().startswith("sa"):
                    continue
                item = {"id": f"{spk}_{m.group(1).lower()}", "audio": str(wav), "speaker": spk,
                        "subset": dr.name.lower()}
                text, reject = _text(wav, units, phone_set)
                if reject:
                    item["reject"] = reject
                else:
                    item["text"] = text
                yield item


def prepare(cfg, progress: bool = True, summary: Summary | None = None) -> Summary:
    root = find_root(source_dir(cfg, "timit"))
    units, ps = cfg.data.units, cfg.data.phone_set
    summary = summary or Summary("timit")
    splits = {"train": lambda: items(root, "train", None, units, ps),
              "dev": lambda: items(root, "test", DEV_SPEAKERS, units, ps),
              "test": lambda: items(root, "test", CORE_TEST, units, ps)}
    prepare_splits(cfg.data.root, splits, Checks.from_config(cfg), summary, cfg.data.nj, progress)
    if units != "phone":
        summary.note("note: data.units=char: word transcripts (.TXT); set data.units=phone for "
                     "phone recognition")
    return summary
