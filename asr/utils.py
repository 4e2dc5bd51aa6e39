"""The one copy of three things every stage needs: the device, atomic file writes, worker pools."""

from __future__ import annotations

import hashlib
import itertools
import logging
import multiprocessing as mp
import os
import sys
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- device

def pick_device(name: str = "auto", local_rank: int = 0, setting: str = "device"):
    """torch.device for a "auto" / "cpu" / "cuda" (/ "cuda:N", "mps") setting.

    auto: CUDA (this process's local rank under torchrun) when present, else the CPU.
    cuda without CUDA raises RuntimeError naming the setting: a run that asked for the GPU
    never silently runs on the CPU.
    """
    import torch
    name = str(name or "auto").lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"{setting}={name} but CUDA is not available")
        return torch.device(name) if ":" in name else torch.device("cuda", local_rank)
    return torch.device(name)


# ---------------------------------------------------------------- atomic writes

@contextmanager
def atomic_path(path: str | Path, suffix: str = "", fsync: bool = True) -> Iterator[Path]:
    """A hidden temporary path beside `path` to write to; when the block succeeds the file is
    flushed to disk (fsync) and renamed onto `path`, so a crash or a full disk mid-write leaves
    the previous file intact. On error the temporary file is removed.

    suffix: an extension the writing library insists on (np.save adds ".npy").
    fsync: off for many small files whose loss is redone anyway (corpus audio, shards).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", fsync: bool = True):
    """open() for writing, atomically (see atomic_path); text modes are UTF-8."""
    with atomic_path(path, fsync=fsync) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_open(path) as f:
        f.write(text)
    return Path(path)


# ---------------------------------------------------------------- worker pools

def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _one_thread(initializer: Callable | None, initargs: tuple) -> None:
    """Worker start: parallelism comes from the processes, so torch uses one thread in each."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    if initializer is not None:
        initializer(*initargs)


class WorkerPool:
    """nj worker processes (one torch thread each), or the calling process when nj <= 1.

    start: "fork" (cheap; workers see the parent's modules) or "spawn" (a fresh interpreter,
    for work that must not inherit the parent's threads).
    """

    def __init__(self, nj: int, initializer: Callable | None = None, initargs: tuple = (),
                 start: str = "fork"):
        self.nj = nj
        self.pool = None
        if nj > 1:
            self.pool = mp.get_context(start).Pool(nj, _one_thread, (initializer, initargs))
        else:
            self._saved_threads = _torch_threads()
            _one_thread(initializer, initargs)

    def imap(self, func: Callable, items: Iterable, ordered: bool = True, chunksize: int = 1) -> Iterator:
        """func over items; results in item order, or as they finish when ordered=False."""
        if self.pool is None:
            return map(func, items)
        run = self.pool.imap if ordered else self.pool.imap_unordered
        return run(func, items, chunksize)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
        elif self._saved_threads:
            sys.modules["torch"].set_num_threads(self._saved_threads)

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *_) -> None:
        self.close()


def _torch_threads() -> int:
    return sys.modules["torch"].get_num_threads() if "torch" in sys.modules else 0


def _run_batch(job: tuple) -> list:
    func, batch, arg = job
    return [r for item in batch for r in func(item, arg)]


def pool_map(func: Callable, items: Iterable, arg=None, nj: int = 1, chunk: int = 16) -> Iterator:
    """func(item, arg) -> list of results, over nj processes, results flattened in item order.

    Items are consumed lazily with a bounded number of batches in flight, so neither the items
    nor the results of a whole corpus are ever in memory at once.
    """
    if nj <= 1:
        for item in items:
            yield from func(item, arg)
        return
    it = iter(items)
    with WorkerPool(nj) as workers:
        pending: deque = deque()
        while True:
            batch = list(itertools.islice(it, chunk))
            if batch:
                pending.append(workers.pool.apply_async(_run_batch, ((func, batch, arg),)))
            if pending and (not batch or len(pending) >= 4 * nj):
                yield from pending.popleft().get()
            elif not batch:
                return


# ---------------------------------------------------------------- memory

_STATUS_FIELDS = {"VmRSS": "rss_mb", "RssAnon": "anon_mb", "RssFile": "file_mb",
                  "RssShmem": "shmem_mb", "VmHWM": "peak_mb"}


def memory_mb(status_path: str = "/proc/self/status") -> dict[str, float]:
    """This process's resident memory in MiB: rss_mb (total), anon_mb (heap: what the process
    allocated), file_mb (file-backed pages, e.g. memory-mapped feature shards: shared and
    reclaimable), shmem_mb, peak_mb (high-water mark of rss).

    Read from /proc/self/status on Linux; elsewhere only the peak is known
    (resource.getrusage), reported as rss_mb and peak_mb.
    """
    out: dict[str, float] = {}
    try:
        with open(status_path, encoding="ascii", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in _STATUS_FIELDS:
                    out[_STATUS_FIELDS[key]] = int(value.split()[0]) / 1024  # kB
    except OSError:
        pass
    if "rss_mb" not in out:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
        out["rss_mb"] = out["peak_mb"] = peak / (2**20 if sys.platform == "darwin" else 1024)
    return out


TCMALLOC = "libtcmalloc_minimal.so.4"  # gperftools' allocator (Debian: libtcmalloc-minimal4)
TCMALLOC_INSTALL = "sudo apt-get install -y libtcmalloc-minimal4"


def find_tcmalloc() -> str | None:
    """tcmalloc's library name when the dynamic loader knows it (ldconfig), else None. Never
    loaded here: a malloc loaded after start would free blocks glibc gave out."""
    if not sys.platform.startswith("linux"):
        return None
    from ctypes.util import find_library
    return TCMALLOC if find_library("tcmalloc_minimal") == TCMALLOC else None


def tcmalloc_loaded() -> bool:
    """Whether tcmalloc is mapped into this process (preloaded: then it is the allocator)."""
    try:
        return "libtcmalloc" in Path("/proc/self/maps").read_text()
    except OSError:
        return False


def allocator_env(allocator: str, env: dict | None = None) -> dict | None:
    """The environment that starts a process with train.allocator's choice ("auto", "tcmalloc",
    "glibc") preloaded, or None when `env` (default os.environ) already does or it cannot.
    tcmalloc must be preloaded: an allocator cannot be swapped once Python has started.
    Raises RuntimeError, with the install command, for "tcmalloc" when it is not installed."""
    env = dict(os.environ if env is None else env)
    if allocator == "glibc" or "libtcmalloc" in env.get("LD_PRELOAD", ""):
        return None
    lib = find_tcmalloc()
    if lib is None:
        if allocator == "tcmalloc":
            raise RuntimeError(f"train.allocator=tcmalloc: {TCMALLOC} not found; install it "
                               f"with: {TCMALLOC_INSTALL} (or set train.allocator=glibc)")
        return None
    env["LD_PRELOAD"] = f"{lib} {env.get('LD_PRELOAD', '')}".strip()
    return env


def restart_with_allocator(allocator: str) -> None:
    """Replace this process by the same command with train.allocator's choice preloaded (see
    allocator_env); returns only when nothing needs to change. On CPU, glibc's allocator either
    fragments its heap with batches of varying shape (memory grows by GBs) or, with a fixed
    mmap threshold, page-faults on every large tensor (42 % slower); tcmalloc does neither."""
    if tcmalloc_loaded() or os.environ.get("ASR_ALLOCATOR_RESTARTED"):
        return
    env = allocator_env(allocator)
    if env is None:
        if allocator == "auto" and find_tcmalloc() is None and sys.platform.startswith("linux"):
            log.warning("CPU training runs about 2x faster with tcmalloc: %s", TCMALLOC_INSTALL)
        return
    env["ASR_ALLOCATOR_RESTARTED"] = "1"  # never loop, even if the preload does not take
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def set_malloc_mmap_threshold(mb: int) -> bool:
    """Make glibc serve host blocks of at least `mb` MiB with mmap, unmapped when freed.

    glibc raises its mmap threshold each time a large block is freed (up to 32 MiB), after
    which tensors of varying size come from the heap, whose free holes the next, differently
    sized batch cannot reuse: a trainer's resident memory grew from 1.5 to 3 GB in 650 updates.
    A fixed threshold stops that. An explicit MALLOC_MMAP_THRESHOLD_ in the environment wins.
    Returns whether the threshold was set (False off glibc, under tcmalloc, for mb <= 0, or
    with the variable).
    """
    if (mb <= 0 or "MALLOC_MMAP_THRESHOLD_" in os.environ or not sys.platform.startswith("linux")
            or tcmalloc_loaded()):
        return False
    import ctypes
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl and others: no glibc malloc to tune
        return False
    M_MMAP_THRESHOLD = -3  # malloc.h
    return bool(libc.mallopt(M_MMAP_THRESHOLD, int(mb) * 2**20))


def gpu_memory_mb(device) -> dict[str, float]:
    """Allocated and peak-allocated CUDA memory of `device` in MiB ({} off CUDA)."""
    import torch
    if getattr(device, "type", str(device)) != "cuda" or not torch.cuda.is_available():
        return {}
    return {"gpu_mb": torch.cuda.memory_allocated(device) / 2**20,
            "gpu_peak_mb": torch.cuda.max_memory_allocated(device) / 2**20}
