"""Memory accounting of the trainer (asr.utils.memory_mb) and the benchmark's table."""

import json
import os
import sys

import pytest

from asr.bench import memory as bench
from asr.utils import memory_mb

STATUS = """Name:\tpython
VmPeak:\t 4000000 kB
VmHWM:\t 3145728 kB
VmRSS:\t 2097152 kB
RssAnon:\t 1572864 kB
RssFile:\t  524288 kB
RssShmem:\t       0 kB
Threads:\t3
"""


def test_memory_mb_parses_proc_status(tmp_path):
    path = tmp_path / "status"
    path.write_text(STATUS)
    assert memory_mb(str(path)) == {"rss_mb": 2048.0, "anon_mb": 1536.0, "file_mb": 512.0,
                                    "shmem_mb": 0.0, "peak_mb": 3072.0}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/status is Linux's")
def test_memory_mb_of_this_process_sees_an_allocation():
    before = memory_mb()
    assert before["rss_mb"] > 0 and before["anon_mb"] > 0
    assert abs(before["anon_mb"] + before["file_mb"] + before["shmem_mb"] - before["rss_mb"]) < 1
    block = bytearray(64 * 2**20)  # touched: zero-filled
    after = memory_mb()
    assert after["anon_mb"] - before["anon_mb"] > 50
    del block


def test_memory_mb_falls_back_to_getrusage(tmp_path):
    mem = memory_mb(str(tmp_path / "missing"))
    assert set(mem) == {"rss_mb", "peak_mb"} and mem["rss_mb"] > 0


def test_bench_table_reports_the_ratio_to_the_reference_point():
    samples = [{"t": 60.0 * m, "step": 10 * m, "rss_mb": 1000.0 + (100 if m >= 5 else 0),
                "anon_mb": 900.0, "file_mb": 100.0 + (100 if m >= 5 else 0)} for m in range(31)]
    text, ratio = bench.table(samples, at=5, at_step=None, every=10)
    assert ratio == 1.0
    assert "| reference (5 min) | 5.0 | 50 | 1100 | 900 | 200 |" in text
    assert "| 10 min |" in text and "| 20 min |" in text and "| end | 30.0 | 300 |" in text
    _, ratio = bench.table(samples, at=None, at_step=1, every=0)
    assert ratio == pytest.approx(1.1)


def test_bench_reads_complete_metrics_lines_only(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"step": 1, "rss_mb": 5.0}) + "\n" + '{"step": 2, "rs')
    rows, pos = bench._metrics_tail(path, 0)
    assert [r["step"] for r in rows] == [1] and pos == len(path.read_text().split("\n")[0]) + 1
    assert bench._metrics_tail(path, pos) == ([], pos)


HEAP_SCRIPT = """
import sys
import numpy as np
from asr.utils import memory_mb, set_malloc_mmap_threshold
if sys.argv[1] == "fixed":
    assert set_malloc_mmap_threshold(1)
big = np.ones(16 * 2**20, np.uint8); del big  # glibc now raises its threshold to 16 MiB
before = memory_mb()["anon_mb"]
block = np.ones(8 * 2**20, np.uint8)  # a smaller batch: from the heap unless the threshold is fixed
small = np.ones(1000, np.uint8)  # allocated after it: the heap cannot shrink past it
del block
print(memory_mb()["anon_mb"] - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_fixed_mmap_threshold_returns_freed_batches_to_the_os():
    """The cause of the trainer's growing memory, in small: after a large free glibc serves
    smaller blocks from the heap and keeps them when freed; a fixed threshold unmaps them."""
    import os
    import subprocess
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    kept = {mode: float(subprocess.run([sys.executable, "-c", HEAP_SCRIPT, mode], env=env, check=True,
                                       capture_output=True, text=True).stdout)
            for mode in ("default", "fixed")}
    assert kept["default"] > 6 and kept["fixed"] < 2, kept


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/status is Linux's")
def test_reading_a_whole_feature_store_leaves_resident_memory_flat(tmp_path):
    """FeatureStore reads its shards (pread), so an epoch through a store does not make it the
    trainer's resident memory, as memory-mapped pages would (RssFile)."""
    import numpy as np
    from asr.data.store import FeatureStore
    data = np.random.default_rng(0).standard_normal((128 * 1000, 80)).astype(np.float16)  # 20 MB
    np.save(tmp_path / "shard-00000.npy", data)
    (tmp_path / "index.jsonl").write_text("".join(
        json.dumps({"id": f"u{k}", "shard": 0, "offset": 1000 * k, "frames": 1000, "text": "a"}) + "\n"
        for k in range(128)))
    (tmp_path / "meta.json").write_text(json.dumps({"features": {"kind": "fbank", "n_mels": 80}}))
    store = FeatureStore(tmp_path)
    before = memory_mb()["file_mb"]
    for k in range(len(store)):
        feats = store.features(k)
        assert feats.dtype == np.float32 and np.array_equal(feats, data[1000 * k:1000 * (k + 1)])
    assert memory_mb()["file_mb"] - before < 5


def test_allocator_choices(monkeypatch):
    from asr import utils
    monkeypatch.setattr(utils, "find_tcmalloc", lambda: "libtcmalloc_minimal.so.4")
    env = utils.allocator_env("auto", {"LD_PRELOAD": "libother.so"})
    assert env["LD_PRELOAD"] == "libtcmalloc_minimal.so.4 libother.so"
    assert utils.allocator_env("tcmalloc", {"LD_PRELOAD": "/x/libtcmalloc_minimal.so.4"}) is None
    assert utils.allocator_env("glibc", {}) is None
    monkeypatch.setattr(utils, "find_tcmalloc", lambda: None)
    assert utils.allocator_env("auto", {}) is None  # glibc then, with its mmap threshold
    with pytest.raises(RuntimeError, match="apt-get install -y libtcmalloc-minimal4"):
        utils.allocator_env("tcmalloc", {})


RESTART_SCRIPT = """
import os, sys
from asr.utils import restart_with_allocator, tcmalloc_loaded
print("start", os.getpid(), flush=True)
restart_with_allocator(sys.argv[1])
print("tcmalloc" if tcmalloc_loaded() else "glibc", os.getpid(), sys.argv[1:])
"""


@pytest.mark.parametrize("choice", ["auto", "glibc"])
def test_the_process_restarts_with_tcmalloc_preloaded(choice):
    import subprocess
    from asr.utils import find_tcmalloc
    if choice == "auto" and find_tcmalloc() is None:
        pytest.skip("tcmalloc is not installed (apt-get install libtcmalloc-minimal4)")
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASR_ALLOCATOR_RESTARTED")}
    out = subprocess.run([sys.executable, "-c", RESTART_SCRIPT, choice, "x=1"], env=env, check=True,
                         capture_output=True, text=True).stdout.split("\n")
    pid = out[0].split()[1]
    want = "tcmalloc" if choice == "auto" else "glibc"
    assert out[-2] == f"{want} {pid} ['{choice}', 'x=1']"  # the same process, the same arguments
    assert len(out) == (4 if choice == "auto" else 3)  # "start" twice after the restart
