"""asr serve against a real server (a subprocess) running the tone models trained in the tests:
the OpenAI-style request in every response format (and through the openai package), bad
uploads, a flood against a bounded queue, the API key, and the WebSocket stream."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import openai
import pytest
import soundfile as sf
from websockets.sync.client import connect

from asr.bench.serve import ServerProcess, get_json, multipart, post, process_tree
from asr.serve.jobs import Busy, JobQueue
from asr.transcribe.subtitles import parse_srt
from conftest import SR, small_config, tone_phrases

KEY = "test-key"
MAX_AUDIO_S = 20


@pytest.fixture(scope="module")
def server_tmp(tmp_path_factory):
    """The server's TMPDIR: every upload goes into a temporary folder there, removed afterwards."""
    return tmp_path_factory.mktemp("server_tmp")


@pytest.fixture(scope="module")
def server(tone_run, server_tmp):
    """The bidirectional tone model behind an API key: 2 workers, a queue of 16."""
    with ServerProcess(tone_run / "exp", "--workers", "2", "--queue", "16", "--max-upload-mb", "1",
                       "--max-audio-s", str(MAX_AUDIO_S), "--name", "tones", api_key=KEY,
                       env={"TMPDIR": str(server_tmp)}) as s:
        yield s


@pytest.fixture(scope="module")
def clip(tone_run, tmp_path_factory):
    """A test utterance of the tone corpus and its text (the model gets the test set right)."""
    entries = [json.loads(x) for x in (tone_run / "manifests" / "test.jsonl").open()]
    entry = max(entries, key=lambda e: len(e["text"]))
    return tone_run / "audio" / "test" / f"{entry['id']}.wav", entry["text"]


def ask(server, path, fields=None, name=None, key=KEY, data=None):
    """POST /v1/audio/transcriptions: (status, headers, body bytes)."""
    body, ctype = multipart({"model": "whisper-1", **(fields or {})},
                            path.read_bytes() if data is None else data, name or path.name)
    return post(server.url + "/v1/audio/transcriptions", body, ctype, key)


def error_of(body: bytes) -> dict:
    """OpenAI's error shape, checked."""
    error = json.loads(body)["error"]
    assert set(error) >= {"message", "type", "code"} and error["message"]
    return error


def test_every_response_format(server, clip):
    path, text = clip
    status, _, body = ask(server, path)
    assert status == 200 and json.loads(body) == {"text": text}
    status, headers, body = ask(server, path, {"response_format": "text"})
    assert status == 200 and body.decode() == text + "\n" and headers["content-type"].startswith("text/plain")
    status, _, body = ask(server, path, {"response_format": "srt"})
    assert status == 200 and " ".join(c.text for c in parse_srt(body.decode())) == text
    status, headers, body = ask(server, path, {"response_format": "vtt"})
    assert status == 200 and body.decode().startswith("WEBVTT\n\n00:00:00.") and text in body.decode()

    fields = {"response_format": "verbose_json", "timestamp_granularities[]": ["word", "segment"],
              "language": "en", "prompt": "ignored here", "temperature": "0.2"}
    status, headers, body = ask(server, path, fields)
    v = json.loads(body)
    assert status == 200 and v["text"] == text and v["task"] == "transcribe" and v["language"] == "en"
    assert v["duration"] == pytest.approx(sf.info(path).duration, abs=0.01)
    assert [w["word"] for w in v["words"]] == text.split()
    ends = [0.0] + [t for w in v["words"] for t in (w["start"], w["end"])]
    assert ends == sorted(ends) and ends[-1] <= v["duration"]
    assert " ".join(s["text"] for s in v["segments"]) == text
    assert "prompt" in headers["x-ignored-fields"]  # accepted, and said to have no effect
    status, _, body = ask(server, path, {"response_format": "verbose_json"})
    assert status == 200 and "words" not in json.loads(body) and json.loads(body)["segments"]


def test_the_openai_package(server, clip):
    path, text = clip
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)
    with open(path, "rb") as f:
        assert client.audio.transcriptions.create(model="whisper-1", file=f).text == text
    with open(path, "rb") as f:
        v = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="verbose_json",
                                               timestamp_granularities=["word"])
    assert v.text == text and [w.word for w in v.words] == text.split() and v.duration > 0
    with open(path, "rb") as f:
        srt = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="srt")
    assert text in srt
    assert [m.id for m in client.models.list()] == ["tones"]
    with pytest.raises(openai.AuthenticationError), open(path, "rb") as f:
        openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0).audio.transcriptions.create(
            model="whisper-1", file=f)


def test_bad_uploads_get_a_clear_error(server, clip, tmp_path):
    path, _ = clip
    status, _, body = ask(server, path, data=b"", name="empty.wav")
    assert status == 400 and error_of(body)["code"] == "empty_file" and "empty.wav" in error_of(body)["message"]
    status, _, body = ask(server, path, data=b"just some notes, not audio\n" * 20, name="notes.txt")
    assert status == 400 and error_of(body)["code"] == "invalid_audio"
    assert error_of(body)["message"].startswith("notes.txt: ")  # FFmpeg: "has no audio track"
    status, _, body = ask(server, path, data=b"RIFF\x00\x00\x00\x00WAVEjunk" * 10, name="broken.wav")
    assert status == 400 and error_of(body)["code"] == "invalid_audio"
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(int((MAX_AUDIO_S + 1) * 8000), np.float32), 8000, subtype="PCM_16")
    status, _, body = ask(server, long)
    assert status == 413 and error_of(body)["code"] == "audio_too_long"
    assert f"at most {MAX_AUDIO_S} s" in error_of(body)["message"]
    status, _, body = ask(server, path, data=b"\x00" * 1_100_000, name="big.wav")  # --max-upload-mb 1
    assert status == 413 and error_of(body)["code"] == "file_too_large"
    body, ctype = multipart({"model": "whisper-1"}, path.read_bytes(), path.name, file_field="audio")
    status, _, body = post(server.url + "/v1/audio/transcriptions", body, ctype, KEY)
    assert status == 400 and error_of(body)["code"] == "missing_file"
    assert "'file'" in error_of(body)["message"] and "audio" in error_of(body)["message"]
    status, _, body = ask(server, path, {"response_format": "xml"})
    assert status == 400 and "response_format 'xml'" in error_of(body)["message"]


def test_a_flood_is_refused_in_part_and_the_server_stays_up(server, clip, server_tmp):
    """200 requests at once against 2 workers and a queue of 16: the ones over the limit get
    503 with Retry-After at once, the others their text; nothing else, and then a request
    still answers, memory is back near its level and no upload is left on disk."""
    path, text = clip
    long = np.concatenate([sf.read(path, dtype="float32")[0]] * 8)  # 8 times: each job takes a while
    buf = io.BytesIO()
    sf.write(buf, long, SR, format="WAV", subtype="PCM_16")
    body, ctype = multipart({"model": "whisper-1"}, buf.getvalue(), "long.wav")
    url = server.url + "/v1/audio/transcriptions"
    assert post(url, body, ctype, KEY)[0] == 200
    before = server.rss_mb()
    start = threading.Barrier(200)

    def one(_):
        start.wait()
        return post(url, body, ctype, KEY)
    with ThreadPoolExecutor(200) as pool:
        results = list(pool.map(one, range(200)))
    statuses = [s for s, _, _ in results]
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert statuses.count(503) > 0 and statuses.count(200) >= 18
    for status, headers, body_ in results:
        if status == 503:
            assert int(headers["retry-after"]) >= 1 and error_of(body_)["code"] == "server_busy"
        else:
            assert json.loads(body_)["text"].startswith(text)
    status, _, answer = ask(server, path)
    assert status == 200 and json.loads(answer)["text"] == text
    time.sleep(0.5)
    assert server.rss_mb() < before * 1.25 + 200, (before, server.rss_mb())
    assert [p.name for p in server_tmp.iterdir() if not p.name.startswith("pymp-")] == []


def test_api_key(server, clip):
    path, text = clip
    for key in (None, "wrong"):
        status, headers, body = ask(server, path, key=key)
        assert status == 401 and error_of(body)["code"] == "invalid_api_key"
        assert headers["www-authenticate"] == "Bearer"
    status, _, body = ask(server, path, key=None, data=b"\0" * 900_000)  # refused, body read: no reset
    assert status == 401 and error_of(body)["code"] == "invalid_api_key"
    assert ask(server, path)[0] == 200
    assert get_json(server.url + "/health")["status"] == "ok"  # open: for load balancers
    with pytest.raises(Exception, match="401"):
        get_json(server.url + "/v1/models")
    assert get_json(server.url + "/v1/models", KEY)["data"][0]["id"] == "tones"
    with connect(server.url.replace("http", "ws") + "/v1/stream") as ws:  # the browser's way: in config
        ws.send(json.dumps({"type": "config", "api_key": "wrong"}))
        assert json.loads(ws.recv())["error"]["code"] == "invalid_api_key"
    with connect(server.url.replace("http", "ws") + "/v1/stream") as ws:
        ws.send(json.dumps({"type": "config", "api_key": KEY}))
        assert json.loads(ws.recv())["type"] == "ready"


# ---------------------------------------------------------------- the WebSocket stream

def stream(url: str, audio: np.ndarray, fmt: str = "s16le", frame: int = 1234, headers=None) -> list[dict]:
    """Send audio over /v1/stream in frames (as a client would, header auth), then end; every
    message the server sent."""
    pcm = (audio * 32768).round().clip(-32768, 32767).astype("<i2") if fmt == "s16le" else audio.astype("<f4")
    messages = []
    with connect(url.replace("http", "ws") + f"/v1/stream?sample_rate={SR}&format={fmt}",
                 additional_headers=headers or {}) as ws:
        messages.append(json.loads(ws.recv()))
        assert messages[0]["type"] == "ready", messages
        for i in range(0, len(pcm), frame):
            ws.send(pcm[i:i + frame].tobytes())
        ws.send(json.dumps({"type": "end"}))
        while messages[-1]["type"] != "done":
            messages.append(json.loads(ws.recv(timeout=30)))
    return messages


def test_stream_segments_of_a_bidirectional_model(server):
    """A bidirectional model cannot stream: each pause-delimited segment is decoded offline
    and sent as a final, with times from the start of the stream."""
    rng = np.random.default_rng(5)
    gap = np.zeros(SR, np.float32)  # 1 s pause between the phrases
    audio = np.concatenate([tone_phrases(["ab cd"], rng), gap, tone_phrases(["fed abc"], rng)])
    buf = io.BytesIO()
    sf.write(buf, audio, SR, format="WAV", subtype="FLOAT")
    offline = json.loads(ask(server, None, data=buf.getvalue(), name="two.wav")[2])["text"]
    messages = stream(server.url, audio, headers={"Authorization": f"Bearer {KEY}"})
    assert messages[0]["mode"] == "segments"
    finals = [m for m in messages if m["type"] == "final"]
    assert len(finals) == 2 and " ".join(f["text"] for f in finals) == offline
    assert finals[1]["words"][0]["start"] > finals[0]["end"] >= finals[0]["words"][-1]["end"]
    assert any(m["type"] == "partial" for m in messages)


def test_a_killed_worker_is_replaced(server, clip):
    path, text = clip
    workers = [pid for pid in process_tree(server.proc.pid)
               if b"multiprocessing.spawn" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    time.sleep(0.5)
    status, _, body = ask(server, path)  # a new pool, warmed up before it answers
    assert status == 200 and json.loads(body)["text"] == text, body
    assert ask(server, path)[0] == 200


@pytest.fixture(scope="module")
def uni_server(tone_run, tmp_path_factory):
    """A unidirectional (streaming) model trained for a few updates: rough text, but streaming
    and offline decoding must give the same one."""
    from asr.config import apply
    from asr.train import Trainer
    exp = tmp_path_factory.mktemp("uni") / "exp"
    cfg = small_config(tone_run, exp, max_steps=60, epochs=6, checkpoint_every=0, log_every=1000)
    apply(cfg, {"model": {"bidirectional": False, "lookahead": 2, "rnn_layers": 1}})
    Trainer(cfg).train()
    with ServerProcess(exp, "--decoder", "greedy", "--chunk-ms", "120", "--timeout-s", "3") as s:
        yield s


def test_stream_final_text_equals_offline_for_a_streaming_model(uni_server, clip, tmp_path):
    path, _ = clip
    audio = np.concatenate([sf.read(path, dtype="float32")[0]] * 3)
    sf.write(tmp_path / "three.wav", audio, SR, subtype="FLOAT")
    status, _, body = ask(uni_server, tmp_path / "three.wav", key=None)
    offline = json.loads(body)["text"]
    assert status == 200 and len(offline) >= 3, "the test model emits too little to compare (test set-up)"
    for fmt in ("s16le", "f32le"):
        messages = stream(uni_server.url, audio, fmt)
        assert messages[0]["mode"] == "streaming"
        finals = [m for m in messages if m["type"] == "final"]
        assert len(finals) == 1 and finals[0]["text"] == offline, (fmt, finals, offline)
        assert [m["type"] for m in messages].count("partial") >= 2  # text grows as audio arrives
        assert finals[0]["end"] == pytest.approx(len(audio) / SR, abs=0.01)


def test_a_request_over_the_time_limit_gets_504(uni_server):
    """A client that stops sending its upload half way is answered 504 after --timeout-s (3 s)."""
    body, ctype = multipart({"model": "whisper-1"}, b"\0" * 20000, "slow.wav")
    port = int(uni_server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:len(body) // 2])
        start = time.monotonic()
        answer = conn.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 504") and '"code":"timeout"' in answer
    assert 2.5 < time.monotonic() - start < 20
    assert get_json(uni_server.url + "/health")["busy"] == 0  # its slot was given back


# ---------------------------------------------------------------- the job queue, alone

def test_the_queue_refuses_when_full_and_a_timed_out_job_keeps_its_slot():
    executor = ThreadPoolExecutor(1)
    jobs = JobQueue(lambda: executor, slots=2, workers=1)

    async def scenario():
        first = jobs.admit()
        with pytest.raises(asyncio.TimeoutError):  # the caller gives up; the job runs on
            await asyncio.wait_for(jobs.run(first, time.sleep, 0.3), 0.05)
        second = jobs.admit()
        with pytest.raises(Busy) as busy:
            jobs.admit()
        assert busy.value.retry_after >= 1
        second.release()  # never ran: freed at once
        await asyncio.sleep(0.4)  # the timed-out job has finished: its slot is free again
        assert jobs.taken == 0
        assert await jobs.run(jobs.admit(), sum, [1, 2]) == 3
    asyncio.run(scenario())
    assert jobs.taken == 0
    executor.shutdown()
