"""KenLM's `lmplz` and `build_binary`, which no wheel ships: built from the kenlm source package
on PyPI by `asr lm install-tools` (once per user: ~/.cache/asr-ctc/kenlm-<version>/bin, or
--prefix), after checking that the system has what the build needs.

    asr lm install-tools                    # ~/.cache/asr-ctc/kenlm-0.3.0/bin/{lmplz,build_binary}
    asr lm install-tools --prefix .venv/kenlm

asr.decoding.lm.kenlm_program finds them there (and in $ASR_KENLM_BIN, <venv>/kenlm/bin, PATH).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VERSION = "0.3.0"
SHA256 = "c4628bb9fb63c8a6f9240035b8b037385cfc404cb72e933cf48878291edac1e8"
PROGRAMS = ("lmplz", "build_binary")
# what the build needs -> the Debian package that provides it
BUILD_NEEDS = {"cmake": "cmake", "c++": "g++",
               "boost/program_options.hpp": "libboost-program-options-dev",
               "boost/system/error_code.hpp": "libboost-system-dev",
               "boost/thread.hpp": "libboost-thread-dev", "boost/test/unit_test.hpp": "libboost-test-dev",
               "zlib.h": "zlib1g-dev", "bzlib.h": "libbz2-dev", "lzma.h": "liblzma-dev"}
INCLUDE_DIRS = ("/usr/include", "/usr/local/include", "/opt/homebrew/include")

log = logging.getLogger(__name__)


class KenlmBuildError(RuntimeError):
    """The KenLM tools cannot be built here; the message says what is missing."""


def user_tools_dir() -> Path:
    """Where `asr lm install-tools` puts the programs by default (one build per user)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "asr-ctc" / f"kenlm-{VERSION}" / "bin"


def missing_build_needs() -> list[str]:
    """The Debian packages the build lacks (programs on PATH, headers in the include dirs)."""
    missing = []
    for need, package in BUILD_NEEDS.items():
        if "/" in need or need.endswith(".h"):
            ok = any((Path(d) / need).is_file() for d in INCLUDE_DIRS)
        else:
            ok = shutil.which(need) is not None or (need == "c++" and shutil.which("g++"))
        if not ok:
            missing.append(package)
    return missing


def installed(prefix: Path) -> bool:
    return all(os.access(prefix / name, os.X_OK) for name in PROGRAMS)


def _run(cmd: list[str], log: Path, what: str) -> None:
    with open(log, "w", encoding="utf-8") as out:
        if subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
            tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise KenlmBuildError(f"{what} failed; the end of its log:\n{tail}")


def install_tools(prefix: str | Path | None = None, jobs: int = 2, quiet: bool = False) -> Path:
    """Build lmplz and build_binary into prefix (default user_tools_dir()); returns the folder.
    A no-op when both are there. KenlmBuildError names the missing system packages, or shows
    the failing step's log. Its steps are logged (INFO; DEBUG when quiet)."""
    from asr.data.archive import safe_extract, verify_checksum
    bin_dir = Path(prefix) if prefix else user_tools_dir()
    if installed(bin_dir):
        return bin_dir
    missing = missing_build_needs()
    if missing:
        raise KenlmBuildError("building KenLM's lmplz and build_binary needs: "
                              f"{' '.join(missing)}; install them with\n"
                              f"  sudo apt-get install -y {' '.join(missing)}\n"
                              "(other systems: cmake, a C++ compiler, and the Boost "
                              "program_options/system/thread/test, zlib, bzip2 and xz headers)")
    def say(msg: str) -> None:
        log.log(logging.DEBUG if quiet else logging.INFO, "kenlm: %s", msg)
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="asr-kenlm-") as tmp:
        work = Path(tmp)
        say(f"fetching the kenlm {VERSION} source package from PyPI")
        # --no-build-isolation: pip would otherwise build cmake from source to read the metadata
        _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
              "--no-build-isolation", "-d", str(work), f"kenlm=={VERSION}"], work / "pip.log",
             "downloading the kenlm source package")
        sdist = work / f"kenlm-{VERSION}.tar.gz"
        verify_checksum(sdist, SHA256, "sha256")
        safe_extract(sdist, work)
        src = work / f"kenlm-{VERSION}"
        if not (src / "lm" / "builder" / "lmplz_main.cc").is_file():
            raise KenlmBuildError(f"the kenlm {VERSION} source package lacks lm/builder")
        say(f"building lmplz and build_binary with {jobs} jobs (a minute or two)")
        _run(["cmake", "-S", str(src), "-B", str(work / "build"), "-DCMAKE_BUILD_TYPE=Release",
              "-DKENLM_MAX_ORDER=6", "-DCOMPILE_TESTS=OFF", "-DENABLE_PYTHON=OFF"],
             work / "cmake.log", "configuring KenLM (cmake)")
        _run(["cmake", "--build", str(work / "build"), "--target", *PROGRAMS, "-j", str(jobs)],
             work / "build.log", "compiling KenLM")
        bin_dir.mkdir(parents=True, exist_ok=True)
        for name in PROGRAMS:  # copy, then rename: a half-copied program is never found
            part = bin_dir / f".{name}.part"
            shutil.copy2(work / "build" / "bin" / name, part)
            part.chmod(0o755)
            os.replace(part, bin_dir / name)
    say(f"{bin_dir}/{{{','.join(PROGRAMS)}}} built in {time.time() - start:.0f} s")
    return bin_dir
