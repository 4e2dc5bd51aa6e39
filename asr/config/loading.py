"""Loading a run configuration: YAML recipe files (with `base:` variants) onto the sections,
then key=value overrides; saving the resolved configuration beside a run."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from asr.config.sections import Config
from asr.config.types import _coerce, field_types
from asr.utils import atomic_write_text

log = logging.getLogger(__name__)

# Keys that were settings once: {section: {key: why}}. Where a recipe, a saved run config or the
# command line still gives one, it is dropped with a logged note, so that old runs still load.
REMOVED = {"decode": {"batch_size": "nothing read it: decoding batches by frames"}}
# Keys that moved to another section: {section: {key: new section}}. An old recipe, saved run
# config or override still sets them, with a logged note.
MOVED = {"data": {key: "builtin" for key in ("hours", "dev_hours", "test_hours", "voices", "real",
                                             "real_test_hours", "real_dev_hours", "real_speed_factors",
                                             "real_degraded", "channel_share", "lm_sources")}}


def _update(section: Any, values: dict, where: str) -> None:
    hints = field_types(type(section))
    removed = REMOVED.get(section.SECTION, {})
    for key, value in values.items():
        if key not in hints and key in removed:
            log.info("%s.%s is no longer a setting (%s): ignored", where, key, removed[key])
            continue
        if key not in hints:
            known = ", ".join(f.name for f in dataclasses.fields(section))
            raise ValueError(f"{where}: unknown key {key!r} (known: {known})")
        setattr(section, key, _coerce(value, hints[key], f"{where}.{key}"))
    section.check()


def apply(cfg: Config, values: dict, where: str = "config") -> Config:
    """Apply a nested dict {section: {key: value}} onto cfg."""
    hints = get_type_hints(Config)
    for section, sub in _moved(values or {}, where).items():
        if section not in hints:
            raise ValueError(f"{where}: unknown section {section!r} (known: {', '.join(hints)})")
        _update(getattr(cfg, section), sub, f"{where}:{section}")
    return cfg


def _moved(values: dict, where: str) -> dict:
    """values with the keys of MOVED put into their new sections (a note for each)."""
    out: dict = {}
    for section, sub in values.items():
        if not isinstance(sub, dict):
            raise ValueError(f"{where}: section {section!r} must be a mapping")
        for key, value in sub.items():
            new = MOVED.get(section, {}).get(key)
            if new:
                log.info("%s: %s.%s is now %s.%s", where, section, key, new, key)
            out.setdefault(new or section, {})[key] = value
    return out


def parse_overrides(overrides: list[str]) -> dict:
    """['train.lr=1e-3', 'model.rnn_type=gru'] -> {'train': {'lr': '1e-3'}, 'model': {...}}.

    Values are parsed as YAML scalars (so 1e-3, true, [a, b] work).
    """
    nested: dict = {}
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ValueError(f"override {item!r} is not of the form section.key=value")
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        nested.setdefault(section, {})[name] = yaml.safe_load(value) if value else ""
    return nested


def _apply_file(cfg: Config, path: Path, seen: tuple = ()) -> None:
    """Apply a YAML file onto cfg; its optional top-level `base: other.yaml` (relative to the
    file) is applied first, so a variant recipe states only what it changes."""
    if path.resolve() in seen:
        raise ValueError(f"{path}: `base` chain loops back to itself")
    with open(path, encoding="utf-8") as f:
        values = yaml.safe_load(f) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of sections")
    base = values.pop("base", None)
    if base:
        _apply_file(cfg, path.parent / str(base), (*seen, path.resolve()))
    apply(cfg, values, str(path))


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the YAML file (safe loader; after its `base` file, if it names one),
    then key=value overrides."""
    cfg = Config()
    if path:
        _apply_file(cfg, Path(path))
    if overrides:
        apply(cfg, parse_overrides(overrides), "command line")
    return cfg


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def save_config(cfg: Config, path: str | Path) -> None:
    """Write cfg as YAML with its local paths made absolute (cfg itself is left as it is), so
    a run folder means the same from any directory. URLs and pipe: commands stay as they are;
    empty settings stay empty."""
    import copy
    import os.path
    paths = {"data": ("root", "source", "train_shards", "shard_index"), "train": ("exp_dir",),
             "decode": ("lm_path", "lexicon_path", "hotwords_file"), "lm": ("dir", "text"),
             "augment": ("noise_dirs", "rir_dirs")}

    def absolute(value: str) -> str:
        local = value and "://" not in value and not value.startswith("pipe:")
        return os.path.abspath(os.path.expanduser(value)) if local else value

    cfg = copy.deepcopy(cfg)
    for name, keys in paths.items():
        section = getattr(cfg, name)
        for key in keys:
            value = getattr(section, key)
            setattr(section, key, [absolute(v) for v in value] if isinstance(value, list) else absolute(value))
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
