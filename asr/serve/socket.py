"""The WebSocket endpoint of `asr serve` (/v1/stream; protocol: docs/serving.md): a session per
socket (asr.serve.stream) fed with the client's PCM; its partial and final texts sent back.
`server` is the app's Server (asr.serve.app)."""

from __future__ import annotations

import asyncio
import hmac
import json

from asr.data.audio import AudioError
from asr.serve import worker
from asr.serve.errors import error_body
from asr.serve.guard import bearer_ok
from asr.serve.jobs import Busy, WorkerDied
from asr.serve.stream import PcmDecoder, SegmentSession, StreamFormat, StreamingSession, run_in


async def _send_error(ws, close_code: int, message: str, code: str) -> None:
    """An error message, then close (the client may be gone already)."""
    from starlette.websockets import WebSocketDisconnect
    try:
        await ws.send_json({"type": "error", **error_body(400, message, code)})
        await ws.close(close_code)
    except (RuntimeError, WebSocketDisconnect):
        pass


async def _new_session(server, fmt: StreamFormat):
    s = server.settings
    if server.stream_model is not None:
        if fmt.sample_rate != server.sample_rate:
            raise ValueError(f"sample_rate {fmt.sample_rate}: this model streams {server.sample_rate} Hz "
                             "audio; resample on the client")
        rec = await run_in(server.stream_threads, server.stream_model.stream, s.chunk_ms)
        return StreamingSession(rec, lambda fn, *a: run_in(server.stream_threads, fn, *a), s.max_audio_s)

    async def decode(samples, rate, final):
        try:  # a partial decode is skipped when the server is busy; a final one waits
            slot = await run_in(server.stream_threads, server.jobs.admit, s.timeout_s if final else 0.0)
        except Busy:
            if final:
                raise
            return None
        try:
            return await server.jobs.run(slot, worker.transcribe_samples, samples, rate)
        finally:
            slot.release()
    return SegmentSession(decode, fmt.sample_rate, s.pause_s, min(30.0, s.max_audio_s))


async def stream_socket(server, ws) -> None:
    """One WebSocket stream (protocol: docs/serving.md)."""
    from starlette.websockets import WebSocketDisconnect
    s = server.settings
    await ws.accept()
    if not server.stream_slots.acquire(blocking=False):
        return await _send_error(ws, 1013, f"all {s.max_streams} streams are taken: retry later", "server_busy")
    try:
        authorized = bearer_ok(ws.headers, s.api_key)
        fmt = StreamFormat.parse(dict(ws.query_params), StreamFormat(server.sample_rate))
        session = await _ready(server, ws, fmt) if authorized else None
        pcm = PcmDecoder(fmt.format)
        while True:
            message = await asyncio.wait_for(ws.receive(), s.timeout_s)
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                if session is None:
                    return await _send_error(ws, 1008, "send {\"type\": \"config\", \"api_key\": KEY} "
                                                       "before audio", "invalid_api_key")
                for out in await session.accept(pcm(message["bytes"])):
                    await ws.send_json(out)
                continue
            request = json.loads(message.get("text") or "{}")
            kind = request.get("type") if isinstance(request, dict) else None
            if kind == "config":
                if not authorized and not hmac.compare_digest(str(request.get("api_key", "")).encode(),
                                                              (s.api_key or "").encode()):
                    return await _send_error(ws, 1008, "missing or wrong api_key", "invalid_api_key")
                authorized = True
                fmt = StreamFormat.parse(request, fmt)
                session, pcm = await _ready(server, ws, fmt), PcmDecoder(fmt.format)
            elif kind == "end" and session is not None:
                for out in await session.finish():
                    await ws.send_json(out)
                await ws.send_json({"type": "done"})
            else:
                await ws.send_json({"type": "error", **error_body(
                    400, f"unknown message {str(request)[:80]!r}: send config, end, or binary audio",
                    "invalid_message")})
    except WebSocketDisconnect:
        pass
    except asyncio.TimeoutError:
        await _send_error(ws, 1000, f"no message for {s.timeout_s:g} s: closing", "timeout")
    except (ValueError, AudioError) as e:  # bad config, bad samples, undecodable JSON
        await _send_error(ws, 1003, str(e), "invalid_stream")
    except (Busy, WorkerDied):
        await _send_error(ws, 1013, "the server is busy or restarting a worker: retry later", "server_busy")
    finally:
        server.stream_slots.release()


async def _ready(server, ws, fmt: StreamFormat):
    session = await _new_session(server, fmt)
    await ws.send_json({"type": "ready", "mode": session.mode, "sample_rate": fmt.sample_rate,
                        "format": fmt.format, "model": server.settings.model_name})
    return session
