"""Warzone 2100 (Debian package ``warzone2100-data``): the game's recorded English voice clips
(status reports, unit acknowledgements, tutorial narration) -> manifests. GPL; only read at
build time.

data.source is the ``.deb`` (extracted with dpkg-deb into <data.root>/download/<name>/ once), its
extracted root, any folder above ``base.wz``, or ``base.wz`` itself. As verified on the package
(4.3.3-3): ``usr/share/games/warzone2100/base.wz`` is a zip (136 MB; ``mp.wz`` beside it holds
no audio) with 558 Ogg Vorbis clips (17 min), read in place, never extracted:

``audio/<folder>/.../<name>.ogg``; sound effects in ``audio/sfx/``, ``audio/radclick/`` and
``audio/multi/`` (their audio.cfg comments name the sound, "Rotary Laser": not words). A name
can be in two folders with different takes of the same line (pcv480..486: console/, missmesg/).

``audio/audio.cfg``: one line a clip, ``audio "pcv357.ogg" oneshot 100 1800 /*Research
Completed*/``; the comment is the spoken text. Lines that are only a comment head a section;
the sections that name a voice ("Group & Commander Voices - Male", "TRANSPORT PILOTS",
"VTOL Pilots" with "Ver-1".."Ver-3", "THE COLLECTIVE") give the speaker, the rest are one
voice, "warzone2100".

``script/tutorial.js``: ``{"audio": "tut1.ogg", ..., "message": _("In this training session
...")}``: the console message shown while the clip plays (``undefined`` for 5 clips).

``audio/proxmessages/c1prox.fodt`` (an OpenDocument text, flat XML): ``C1prox1.wav`` followed
by the quoted line (“...”), for c1prox1..5.

Left out and counted in Summary notes: clips whose words the package does not write down (the
taunts, the cam3 countdown, the NEXUS lines and the commander's digits listed without a
comment, the research sequence audio, extra pcv6xx takes, the tutorial clips that
tutorial.js does not use). The text is taken as written.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from pathlib import Path, PurePosixPath

from asr.data.checks import NON_SPEECH, Summary
from asr.utils import atomic_path

from .common import find_dir, prepare_one_split, source_dir

DEBIAN_PACKAGE = "warzone2100-data"  # data.source may be its .deb (apt-get download)
CORPUS = "warzone2100"
AUDIO_CFG = "audio/audio.cfg"
TUTORIAL_JS = "script/tutorial.js"
PROXIMITY = "audio/proxmessages/"
SOUND_EFFECTS = ("audio/sfx/", "audio/radclick/", "audio/multi/")
VOICES = {"group & commander voices - male": "commander", "transport pilots": "transport-pilot",
          "vtol pilots": "vtol-pilot", "the collective": "collective"}
CFG_CLIP = re.compile(r'^\s*audio\s+"([^"]+)"[^/\n]*(?:/\*(.*?)\*/)?')
CFG_HEADING = re.compile(r"^\s*/\*(.*?)\*/\s*$")
VERSION = re.compile(r"ver-(\d+)")
TUTORIAL_LINE = re.compile(r'"audio":\s*"([^"]+)"[^\n]*?"message":\s*'
                           r'(?:_\("((?:[^"\\]|\\.)*)"\)|undefined)')
PROX_LINE = re.compile(r"(\w+)\.wav\s*“([^”]*)”")


# --- the texts in the package's data -----------------------------------------------------------

def speaker_of(voice: str | None) -> str:
    return f"{CORPUS}-{voice}" if voice else CORPUS


def _voice_after(heading: str, voice: str | None) -> str | None:
    """The voice of the lines below a section heading (None: the main voice)."""
    heading = " ".join(heading.split()).lower()
    if heading in VOICES:
        return VOICES[heading]
    version = VERSION.fullmatch(heading)
    if version and voice and voice.startswith("vtol-pilot"):
        return f"vtol-pilot-{version.group(1)}"  # each version is another pilot's voice
    return None


def audio_cfg_clips(text: str) -> dict[str, tuple[str, str]]:
    """audio.cfg -> {clip name: (comment, speaker)}; comment "" where a line has none."""
    clips, voice = {}, None
    for line in text.splitlines():
        heading = CFG_HEADING.match(line)
        if heading:
            voice = _voice_after(heading.group(1), voice)
            continue
        clip = CFG_CLIP.match(line)
        if clip:
            comment = " ".join((clip.group(2) or "").split())
            clips[clip.group(1).lower()] = (comment, speaker_of(voice))
    return clips


def tutorial_messages(text: str) -> dict[str, str]:
    """tutorial.js -> {clip name: console message}; "" for a clip whose message is undefined."""
    out = {}
    for name, message in TUTORIAL_LINE.findall(text):
        out[name.lower()] = re.sub(r"\\(.)", r"\1", message)
    return out


def proximity_lines(fodt: bytes) -> dict[str, str]:
    """A proximity-message document (flat ODF XML) -> {clip name (.ogg): quoted line}."""
    words = " ".join(ET.fromstring(fodt).itertext())
    return {f"{stem.lower()}.ogg": " ".join(line.split())
            for stem, line in PROX_LINE.findall(words)}


def read_texts(wz: zipfile.ZipFile) -> tuple[dict, dict]:
    """({clip name: (text, speaker)} from every text source, {clip name: reason} for clips a
    source lists without words)."""
    clips = audio_cfg_clips(wz.read(AUDIO_CFG).decode("utf-8", "replace"))
    texts = {name: c for name, c in clips.items() if c[0]}
    wordless = {name: "listed in audio.cfg without a comment" for name, c in clips.items()
                if not c[0]}
    if TUTORIAL_JS in wz.namelist():
        for name, message in tutorial_messages(wz.read(TUTORIAL_JS).decode("utf-8")).items():
            if message:
                texts[name] = (message, CORPUS)
            else:
                wordless[name] = "tutorial clip whose message is undefined in tutorial.js"
    for member in wz.namelist():
        if member.startswith(PROXIMITY) and member.endswith(".fodt"):
            texts.update({n: (t, CORPUS) for n, t in proximity_lines(wz.read(member)).items()})
    return texts, wordless


# --- items and prepare -------------------------------------------------------------------------

def clip_members(wz: zipfile.ZipFile) -> list[str]:
    return sorted(m for m in wz.namelist() if m.lower().endswith(".ogg")
                  and m.startswith(("audio/", "sequenceaudio/")))


def clip_id(member: str) -> str:
    """warzone2100-<folder>-<name>: the folder tells two takes of one name apart."""
    path = PurePosixPath(member)
    return f"{CORPUS}-{path.parent.name}-{path.stem}".lower()


def copy_clip(wz: zipfile.ZipFile, member: str, target: Path) -> Path:
    """Copy one clip out of the zip once (atomic; an existing file is kept)."""
    if not target.exists():
        with atomic_path(target, fsync=False) as tmp:
            tmp.write_bytes(wz.read(member))
    return target


def items(base_wz: str | Path, audio_dir: str | Path, counts: Counter | None = None):
    """Importer items for every voice clip with words in the package data, a rejection for every
    sound effect, in member order; clips without words are counted in `counts` (reason -> n)."""
    base_wz, audio_dir = Path(base_wz), Path(audio_dir)
    counts = Counter() if counts is None else counts
    with zipfile.ZipFile(base_wz) as wz:
        texts, wordless = read_texts(wz)
        for member in clip_members(wz):
            name, uid = PurePosixPath(member).name.lower(), clip_id(member)
            if member.startswith(SOUND_EFFECTS):
                yield {"id": uid, "audio": f"{base_wz.name}:{member}",
                       "reject": (NON_SPEECH, "sound effect")}
            elif name in texts:
                text, speaker = texts[name]
                audio = copy_clip(wz, member, audio_dir / f"{uid}.ogg")
                yield {"id": uid, "audio": str(audio), "text": text, "speaker": speaker}
            else:
                folder = str(PurePosixPath(member).parent)
                counts[wordless.get(name, f"no text in the package data ({folder})")] += 1


def find_base_wz(cfg) -> Path:
    """base.wz of data.source (the .deb, its extracted root, a folder above it or the file),
    checked to be a zip that holds audio/audio.cfg."""
    source = source_dir(cfg, CORPUS)
    if source.is_file():
        base_wz = source
    else:
        found = find_dir(source, lambda d: (d / "base.wz").is_file(), 5)
        if found is None:
            raise FileNotFoundError(f"{CORPUS}: no base.wz in {source}")
        base_wz = found / "base.wz"
    if not zipfile.is_zipfile(base_wz):
        raise ValueError(f"{CORPUS}: {base_wz} is not a zip archive")
    with zipfile.ZipFile(base_wz) as wz:
        if AUDIO_CFG not in wz.namelist():
            raise FileNotFoundError(f"{CORPUS}: no {AUDIO_CFG} in {base_wz}")
    return base_wz


def prepare(cfg, progress: bool = True, summary: Summary | None = None) -> Summary:
    """Every voice clip with words in one split, "all"."""
    base_wz = find_base_wz(cfg)
    audio_dir = Path(cfg.data.root) / "audio" / CORPUS
    return prepare_one_split(cfg, CORPUS, lambda counts: items(base_wz, audio_dir, counts),
                             progress, summary)
