"""Installing anywhere: every third-party import of the package is declared in pyproject.toml
(module-level ones in the core dependencies, lazy ones at least in an extra), the installed
wheel (not the checkout) runs `asr transcribe` with beam search + LM from another folder, and
`tools/setup.sh` without root prints the exact apt-get command and carries on."""

from __future__ import annotations

import ast
import json
import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# imported by code that runs in its own environment, never by the package itself
OWN_ENV = {"pyctcdecode": "asr/bench/pyctcdecode_peer.py runs in .venv/bench (numpy<2)"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def declared() -> tuple[set[str], set[str]]:
    """(core distribution names, names in any extra), normalised."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = {_name(r) for r in project["dependencies"]}
    extras = {_name(r) for reqs in project["optional-dependencies"].values() for r in reqs}
    return core, extras - {"asr-ctc"}


def third_party_imports() -> dict[str, dict[str, bool]]:
    """{top-level module: {file: imported at module level?}} over asr/ and data_prep/."""
    found: dict[str, dict[str, bool]] = {}
    for root in ("asr", "data_prep"):
        for path in sorted((REPO / root).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            top_level = {id(n) for n in ast.walk(tree)} - {
                id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                for n in ast.walk(f)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in ("asr", "data_prep"):
                        continue
                    where = found.setdefault(top, {})
                    rel = str(path.relative_to(REPO))
                    where[rel] = where.get(rel, False) or id(node) in top_level
    return found


def test_every_import_is_declared():
    core, extras = declared()
    dists = md.packages_distributions()
    problems = []
    for module, files in sorted(third_party_imports().items()):
        if module in OWN_ENV:
            continue
        names = {d.lower().replace("_", "-") for d in dists.get(module, [])}
        if not names:
            problems.append(f"{module} (imported by {', '.join(files)}) is not installed")
        elif not names & (core | extras):
            problems.append(f"{module} ({', '.join(sorted(names))}) imported by {', '.join(files)} "
                            "is in no dependency list of pyproject.toml")
        elif any(files.values()) and not names & core:
            at_top = [f for f, top in files.items() if top]
            problems.append(f"{module} is imported at module level by {', '.join(at_top)} but is "
                            "only an extra: import it where it is used")
    assert not problems, "\n".join(problems)


def test_the_pinned_lock_covers_the_declared_dependencies():
    core, extras = declared()
    locked = {_name(line) for line in (REPO / "requirements" / "lock.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    assert (core | extras) - locked == set()


def _fake_system(tmp_path: Path, uid: int, debian: bool = True) -> dict:
    """An environment whose PATH puts shims first: `id -u` says uid, dpkg-query finds nothing
    installed (or is absent: not Debian), apt-get must never run."""
    shims = tmp_path / "shims"
    shims.mkdir()
    scripts = {"id": f'[ "$1" = -u ] && echo {uid} || /usr/bin/id "$@"',
               "apt-get": 'echo "apt-get must not run" >&2; exit 99'}
    if debian:
        scripts["dpkg-query"] = "exit 1"
    for name, body in scripts.items():
        (shims / name).write_text(f"#!/bin/sh\n{body}\n")
        (shims / name).chmod(0o755)
    if debian:
        return {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}"}
    for tool in ("bash", "sh", "dirname", "grep", "cat", "sha1sum", "cut", "rm", "touch", "env"):
        (shims / tool).symlink_to(shutil.which(tool))  # only these: no dpkg-query, no apt-get
    return {**os.environ, "PATH": str(shims)}


@pytest.mark.parametrize("config, voices", [("recipes/librispeech_100/config.yaml", False),
                                            ("recipes/builtin/config.yaml", True)])
def test_setup_without_root_prints_the_command_and_carries_on(tmp_path, config, voices):
    proc = subprocess.run(["bash", "tools/setup.sh", config], cwd=REPO, capture_output=True,
                          text=True, env=_fake_system(tmp_path, uid=1000), timeout=600)
    assert proc.returncode == 0, proc.stderr
    command = next(line for line in proc.stderr.splitlines() if "sudo apt-get install -y" in line)
    assert "cmake g++ libboost-program-options-dev" in command and "liblzma-dev" in command
    assert "libtcmalloc-minimal4" in command
    assert ("espeak-ng" in command) == voices and ("festvox-us-slt-hts" in command) == voices
    assert "apt-get must not run" not in proc.stderr


def test_only_the_tests_setup_asks_for_chromium(tmp_path):
    """make test (setup.sh CONFIG test) adds the browser the serve tests drive; make demo does not."""
    commands = {}
    for extra in ([], ["test"]):
        (tmp_path / str(len(extra))).mkdir()
        proc = subprocess.run(["bash", "tools/setup.sh", "recipes/librispeech_100/config.yaml", *extra],
                              cwd=REPO, capture_output=True, text=True,
                              env=_fake_system(tmp_path / str(len(extra)), uid=1000), timeout=600)
        assert proc.returncode == 0, proc.stderr
        commands[bool(extra)] = next(line for line in proc.stderr.splitlines() if "sudo apt-get install -y" in line)
    assert "chromium-driver" in commands[True] and "chromium" not in commands[False]


def test_setup_reads_the_corpus_of_a_variant_from_its_loaded_config(tmp_path):
    """A `base:` variant of a non-built-in recipe names no corpus itself: it needs no voices."""
    variant = tmp_path / "variant.yaml"
    variant.write_text(f"base: {REPO / 'recipes/librispeech_100/config.yaml'}\ntrain:\n  epochs: 1\n")
    proc = subprocess.run(["bash", "tools/setup.sh", str(variant)], cwd=REPO, capture_output=True,
                          text=True, env=_fake_system(tmp_path, uid=1000), timeout=600)
    assert proc.returncode == 0, proc.stderr
    command = next(line for line in proc.stderr.splitlines() if "sudo apt-get install -y" in line)
    assert "libboost-thread-dev" in command and "espeak-ng" not in command


def test_setup_off_debian_names_what_to_install(tmp_path):
    proc = subprocess.run(["bash", "tools/setup.sh", "recipes/timit/config.yaml"], cwd=REPO,
                          capture_output=True, text=True, timeout=600,
                          env=_fake_system(tmp_path, uid=1000, debian=False))
    assert proc.returncode == 0, proc.stderr
    assert "not a Debian system" in proc.stderr and "libboost-thread-dev" in proc.stderr
    assert "espeak-ng" not in proc.stderr


def test_kenlm_install_tools_names_missing_packages(monkeypatch, tmp_path):
    from asr.decoding import kenlm_tools
    monkeypatch.setattr(kenlm_tools, "INCLUDE_DIRS", (str(tmp_path),))  # no headers anywhere
    with pytest.raises(kenlm_tools.KenlmBuildError, match="sudo apt-get install -y .*libboost-system-dev.*liblzma-dev"):
        kenlm_tools.install_tools(tmp_path / "bin")
    assert kenlm_tools.user_tools_dir().parts[-3:] == ("asr-ctc", f"kenlm-{kenlm_tools.VERSION}", "bin")


from test_bundle_api import bundle, tone_file  # noqa: E402,F401  (the module-scoped bundle fixture)


def test_installed_wheel_transcribes_with_beam_and_lm(bundle, tmp_path):  # noqa: F811
    """`pip install .` as a user gets it: the wheel (not this checkout) in a fresh venv, its
    dependencies taken from ours, runs `asr transcribe` with the bundle's beam + LM decoder
    from another folder, and the data_prep verbs are there."""
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO)],
                   check=True, capture_output=True, timeout=300)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    (wheel,) = wheels.glob("asr_ctc-*.whl")
    subprocess.run([*pip, "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    site = next((venv / "lib").glob("python3*/site-packages"))
    ours = next(p for p in sys.path if p.endswith("site-packages") and Path(p, "torch").is_dir())
    (site / "deps.pth").write_text(ours + "\n")  # appended after the wheel: its .pth files unread
    work = tmp_path / "elsewhere"
    work.mkdir()
    audio = tone_file(work / "a.wav", "abc fed ab")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import asr; print(asr.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr
    run = subprocess.run([str(venv / "bin" / "asr"), "transcribe", str(bundle), audio.name,
                          "--decoder", "beam_lm", "--no-progress", "--format", "json", "--out", "out"],
                         cwd=work, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads((work / "out" / "a.json").read_text())
    assert result["text"] == "abc fed ab" and [w["word"] for w in result["words"]] == ["abc", "fed", "ab"]
    verbs = subprocess.run([str(venv / "bin" / "asr"), "--help"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=120).stdout
    assert "prepare" in verbs and "export-lhotse" in verbs and "lm" in verbs
