"""Multi-node data-parallel training, two 'nodes' on one machine: two torchrun launchers
(--nnodes=2, one process each) meet through a c10d rendezvous and train over gloo, as on two
hosts. Each node has its own run folder (no shared file system assumed): only global rank 0
writes the log and checkpoints."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid

import pytest
import torch.distributed as dist

from asr.checkpoint import load_checkpoint
from asr.config import save_config
from conftest import small_config

pytestmark = pytest.mark.skipif(not dist.is_gloo_available(), reason="torch built without gloo")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_train_as_one_world(tone_store, tmp_path):
    endpoint, run_id = f"127.0.0.1:{free_port()}", uuid.uuid4().hex
    # LOGLEVEL=INFO: each launcher logs the ranks and world size the rendezvous gave its node
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "LOGLEVEL": "INFO"}
    nodes = []
    for node in (0, 1):
        cfg = small_config(tone_store, tmp_path / f"node{node}", epochs=2, max_steps=3,
                           batch_frames=600, threads=1, checkpoint_every=0)
        save_config(cfg, tmp_path / f"node{node}.yaml")
        nodes.append(subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
             f"--node-rank={node}", "--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint}",
             f"--rdzv-id={run_id}", "--local-addr=127.0.0.1", "--max-restarts=0",
             "--rdzv-conf=join_timeout=120",
             "-m", "asr.cli", "train", "--config", str(tmp_path / f"node{node}.yaml")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            start_new_session=True))  # its own process group: a hung node is killed whole
    outs = []
    try:
        for p in nodes:
            outs.append(p.communicate(timeout=240))
    finally:
        for p in nodes:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    for p, (out, err) in zip(nodes, outs):
        assert p.returncode == 0, err[-3000:]
    # the c10d rendezvous ranks nodes in its own order, not by --node-rank: read each node's
    ranks = []
    for _, err in outs:
        assert "global_world_sizes=[2]" in err, err[-3000:]
        ranks.append(int(re.search(r"global_ranks=\[(\d+)\]", err).group(1)))
    assert sorted(ranks) == [0, 1]
    # each node's trainer prints its result: the ranks stopped at the same update
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert [r["step"] for r in results] == [3, 3]
    # only global rank 0 writes: log (with the world size its trainer saw) and checkpoint
    first, other = (tmp_path / f"node{ranks.index(r)}" for r in (0, 1))
    assert load_checkpoint(first / "checkpoints" / "last.pt")["step"] == 3
    assert "world size 2" in (first / "train.log").read_text()
    assert not (other / "checkpoints").exists() and not (other / "train.log").exists()
