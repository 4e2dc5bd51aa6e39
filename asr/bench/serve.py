"""`make bench-serve`: the transcription server (`asr serve`) under concurrent load.

    python -m asr.bench.serve [MODEL] [--audio FILE] [--clients 1,4,16] [--seconds 10]
                              [--max-requests 300] [--workers 2] [--queue 16] [--format json]

Starts `asr serve MODEL` on a free loopback port in a subprocess (MODEL: default the built-in
demo's bundle, exp/builtin/bundle), waits until it answers, and for each client count runs that
many clients at once, each posting the audio (an OpenAI-style multipart request) as soon as its
last answer came back, for --seconds or until --max-requests in all. Per level: requests/s,
latency p50/p95/p99, RTF (the level's wall time / the audio it transcribed: below 1 the server
keeps up with that many live speakers), errors by HTTP status, and the server's resident
memory (its process and its workers) before and after the level.

The audio: --audio, else the first entry of data/builtin/manifests/test.jsonl, else 4 s of
generated tones. The helpers (ServerProcess, multipart, post) are the tests' too.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from asr.utils import memory_mb

DEFAULT_MODEL = Path("exp/builtin/bundle")
DEFAULT_MANIFEST = Path("data/builtin/manifests/test.jsonl")


# ---------------------------------------------------------------- an HTTP client, stdlib only

def multipart(fields: dict, file_bytes: bytes, filename: str = "audio.wav",
              file_field: str = "file") -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data request: the fields (a list value repeats
    the field), then the file."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        for v in value if isinstance(value, list) else [value]:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{v}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
                 f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode())
    parts += [file_bytes, f"\r\n--{boundary}--\r\n".encode()]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def post(url: str, body: bytes, content_type: str, api_key: str | None = None,
         timeout: float = 120.0) -> tuple[int, dict, bytes]:
    """(status, headers, body) of a POST; status 0 when the connection failed."""
    headers = {"Content-Type": content_type}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
    except OSError:
        return 0, {}, b""


def get_json(url: str, api_key: str | None = None, timeout: float = 10.0) -> dict:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as r:
        return json.loads(r.read())


# ---------------------------------------------------------------- the server in a subprocess

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    return tree


def tree_rss_mb(pid: int) -> float:
    """Resident memory (MiB) of a process and its descendants (the server and its workers)."""
    return sum(memory_mb(f"/proc/{p}/status").get("rss_mb", 0.0) for p in process_tree(pid))


def _die_with_parent():
    """A preexec_fn (Linux): the server gets SIGTERM when the process that started it dies, so
    a killed benchmark or test run leaves no server behind."""
    try:
        import ctypes
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


class ServerProcess:
    """`asr serve MODEL FLAGS` on a free loopback port, its output in a log file; a context
    manager that waits until /health answers and stops the server (and its workers) on exit."""

    def __init__(self, model: str | Path, *flags: str, api_key: str | None = None,
                 env: dict | None = None, startup_s: float = 180.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_key = api_key
        self.log = tempfile.NamedTemporaryFile("w+", prefix="asr-serve-", suffix=".log")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        env.pop("ASR_API_KEY", None)
        if api_key:
            env["ASR_API_KEY"] = api_key
        self.proc = subprocess.Popen([sys.executable, "-m", "asr.cli", "serve", str(model),
                                      "--port", str(self.port), *flags],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     preexec_fn=_die_with_parent())
        self._wait(startup_s)

    def _wait(self, startup_s: float) -> None:
        deadline = time.monotonic() + startup_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"asr serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                get_json(self.url + "/health", timeout=2)
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"asr serve did not answer within {startup_s:g} s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def rss_mb(self) -> float:
        return tree_rss_mb(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # uvicorn shuts down: the workers with it
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                for pid in reversed(process_tree(self.proc.pid)):
                    os.kill(pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *_) -> None:
        self.stop()


# ---------------------------------------------------------------- the load

def run_level(url: str, body: bytes, content_type: str, clients: int, seconds: float,
              max_requests: int, api_key: str | None = None) -> dict:
    """`clients` concurrent clients posting body back to back for `seconds` or until
    max_requests in all: {"wall_s", "latencies" (of the 200s), "statuses": {status: count}}."""
    lock = threading.Lock()
    sent, latencies, statuses = [0], [], {}
    deadline = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < deadline:
            with lock:
                if sent[0] >= max_requests:
                    return
                sent[0] += 1
            start = time.monotonic()
            status, _, _ = post(url, body, content_type, api_key)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(time.monotonic() - start)
    start = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(client) for _ in range(clients)]:
            f.result()
    return {"wall_s": time.monotonic() - start, "latencies": latencies, "statuses": statuses}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def default_audio(folder: Path) -> Path:
    """The first test utterance of the built-in corpus, else 4 s of tones written to folder."""
    if DEFAULT_MANIFEST.is_file():
        from asr.data.manifest import read_manifest
        for entry in read_manifest(DEFAULT_MANIFEST):
            return Path(entry["audio_filepath"])
    import numpy as np
    import soundfile as sf
    rate = 16000
    t = np.arange(4 * rate) / rate
    wav = 0.3 * np.sin(2 * np.pi * (300 + 200 * np.floor(t * 5 % 4)) * t) * (t * 5 % 1 < 0.7)
    path = folder / "tones.wav"
    sf.write(path, wav.astype("float32"), rate, subtype="PCM_16")
    return path


def audio_seconds(path: Path) -> float:
    from asr.data.reader import audio_duration
    return audio_duration(path) or 0.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m asr.bench.serve", description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="?", default=None,
                   help=f"bundle, run folder or checkpoint (default: {DEFAULT_MODEL})")
    p.add_argument("--audio", help="audio file posted by every client (default: see above)")
    p.add_argument("--clients", default="1,4,16", help="client counts, one level each (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=10.0, help="time per level (default: %(default)s)")
    p.add_argument("--max-requests", type=int, default=300, help="requests per level at most (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="asr serve --workers (default: %(default)s)")
    p.add_argument("--queue", type=int, default=16, help="asr serve --queue (default: %(default)s)")
    p.add_argument("--format", default="json", help="response_format (default: %(default)s)")
    p.add_argument("--serve-args", default="", help="more asr serve flags, e.g. '--decoder greedy'")
    args = p.parse_args(argv)
    model = Path(args.model) if args.model else DEFAULT_MODEL
    if not model.exists():
        print(f"error: no model at {model}: run `make demo` and `make bundle`, or give one: "
              "make bench-serve MODEL=path/to/bundle", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="asr-bench-serve-") as tmp:
        audio = Path(args.audio) if args.audio else default_audio(Path(tmp))
        body, content_type = multipart({"model": "bench", "response_format": args.format},
                                       audio.read_bytes(), audio.name)
        audio_s = audio_seconds(audio)
        flags = ["--workers", str(args.workers), "--queue", str(args.queue), *args.serve_args.split()]
        print(f"asr serve {model} {' '.join(flags)}; audio {audio} ({audio_s:.2f} s); "
              f"{args.seconds:g} s or {args.max_requests} requests per level", flush=True)
        with ServerProcess(model, *flags) as server:
            url = server.url + "/v1/audio/transcriptions"
            post(url, body, content_type)  # warm-up: first request allocates
            rss_start = server.rss_mb()
            print("\n| clients | requests | req/s | p50 s | p95 s | p99 s | RTF | errors | RSS MiB |")
            print("|---:|---:|---:|---:|---:|---:|---:|---|---:|")
            for clients in (int(c) for c in args.clients.split(",") if c):
                r = run_level(url, body, content_type, clients, args.seconds, args.max_requests)
                ok, lat = r["statuses"].get(200, 0), r["latencies"]
                errors = ", ".join(f"{n}x{s or 'conn'}" for s, n in sorted(r["statuses"].items()) if s != 200)
                rtf = r["wall_s"] / (ok * audio_s) if ok and audio_s else float("nan")
                print(f"| {clients} | {sum(r['statuses'].values())} | {ok / r['wall_s']:.2f} | "
                      f"{percentile(lat, 50):.3f} | {percentile(lat, 95):.3f} | {percentile(lat, 99):.3f} | "
                      f"{rtf:.3f} | {errors or 'none'} | {server.rss_mb():.0f} |", flush=True)
            print(f"\nserver RSS (process + {args.workers} workers): {rss_start:.0f} MiB after warm-up, "
                  f"{server.rss_mb():.0f} MiB at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
