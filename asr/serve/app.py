"""The FastAPI application of `asr serve`: the OpenAI-style transcription endpoint, the
WebSocket stream, the browser page, /health and /v1/models (docs/serving.md).

The network runs in a pool of worker processes (asr.serve.jobs, asr.serve.worker), each with
its own model; the event loop only reads uploads into a temporary folder, hands the file to a
worker and renders the result. A streaming (unidirectional) model also runs in this process,
one recogniser per WebSocket, in threads.

FastAPI and Starlette (the serve extra) are imported inside the functions that use them, so
that this module imports without them; for the same reason it has no `from __future__ import
annotations`: the routes' annotations (Request, WebSocket) must be the classes themselves, as
FastAPI reads them, and they exist only inside create_app.
"""

import asyncio
import logging
import multiprocessing as mp
import os
import re
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from asr.data.audio import AudioError
from asr.serve import worker
from asr.serve.errors import ApiError, error_body, error_response, json_response
from asr.serve.guard import Guard
from asr.serve.jobs import Busy, JobQueue, WorkerDied
from asr.serve.responses import FORMATS, MEDIA_TYPES, render
from asr.serve.settings import ServeSettings
from asr.serve.socket import stream_socket

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
GRANULARITIES = ("word", "segment")


# ---------------------------------------------------------------- the shared state

class Server:
    """What the routes share: the settings, the job queue (workers), the streaming model."""

    def __init__(self, settings: ServeSettings, model):
        self.settings = settings
        self.stream_model = model if _streams(model, settings.chunk_ms) else None
        self.sample_rate = model.sample_rate
        self.jobs = None  # a JobQueue, from start()
        self.warming: list = []
        self.stream_slots = threading.BoundedSemaphore(settings.max_streams)
        self.stream_threads = ThreadPoolExecutor(settings.max_streams, thread_name_prefix="stream")

    @property
    def mode(self) -> str:
        return "streaming" if self.stream_model is not None else "segments"

    def make_executor(self) -> ProcessPoolExecutor:
        """The worker processes (spawned: a fresh interpreter, no inherited threads), each
        told to use its share of the cores; warmed at once, so that every worker has loaded
        its model before the first request waits on it."""
        n = self.settings.workers
        ctx = mp.get_context("spawn")
        threads = max(1, (os.cpu_count() or 1) // n)
        executor = ProcessPoolExecutor(n, mp_context=ctx, initializer=worker.start,
                                       initargs=(self.settings, threads, ctx.Barrier(n)))
        self.warming = [executor.submit(worker.ping) for _ in range(n)]  # one spawn per submit
        return executor

    async def start(self) -> None:
        s = self.settings
        self.jobs = JobQueue(self.make_executor, s.workers + s.queue, s.workers)
        pids = await asyncio.gather(*(asyncio.wrap_future(f) for f in self.warming))
        log.info("serving %s (%s) on %d worker(s) (pids %s), stream mode %s, queue %d",
                 s.model, s.model_name, s.workers, ", ".join(map(str, sorted(set(pids)))),
                 self.mode, s.queue)

    def stop(self) -> None:
        if self.jobs is not None:
            self.jobs.shutdown()
        self.stream_threads.shutdown(wait=False, cancel_futures=True)


def _streams(model, chunk_ms: int) -> bool:
    """Whether the model streams (unidirectional, not a phone lexicon model)."""
    try:
        model.stream(chunk_ms=chunk_ms)
    except ValueError as e:
        log.info("not a streaming model (%s): /v1/stream decodes pause-delimited segments", e)
        return False
    return True


# ---------------------------------------------------------------- POST /v1/audio/transcriptions

@dataclass
class TranscriptionRequest:
    """The fields of an OpenAI transcription request that this server uses."""

    upload: object  # the form's file (a starlette UploadFile)
    response_format: str
    words: bool  # timestamp_granularities[] holds "word"
    language: str
    ignored: list[str]  # fields accepted but without effect here


def parse_form(form, content_type: str) -> TranscriptionRequest:
    upload = form.get("file")
    if upload is None:
        sent = [k for k in form.keys()]
        why = f"fields sent: {', '.join(sent)}" if sent else f"Content-Type: {content_type or 'none'}"
        raise ApiError(400, "no 'file' field: send the audio as the 'file' field of a "
                            f"multipart/form-data request ({why})", "missing_file")
    if isinstance(upload, str):
        raise ApiError(400, "the 'file' field is text, not a file: send the audio's bytes as a "
                            "file part (curl -F file=@audio.wav)", "missing_file")
    fmt = str(form.get("response_format") or "json")
    if fmt not in FORMATS:
        raise ApiError(400, f"response_format {fmt!r}: use one of {', '.join(FORMATS)}",
                       "invalid_response_format")
    granularities = form.getlist("timestamp_granularities[]") + form.getlist("timestamp_granularities")
    bad = [g for g in granularities if g not in GRANULARITIES]
    if bad:
        raise ApiError(400, f"timestamp_granularities {bad}: use word and/or segment",
                       "invalid_timestamp_granularities")
    ignored = [k for k in ("prompt", "temperature", "language") if form.get(k)]
    return TranscriptionRequest(upload, fmt, "word" in granularities, str(form.get("language") or ""), ignored)


async def save_upload(upload, folder: str) -> Path:
    """The upload written into folder, keeping a plain suffix (a hint for FFmpeg);
    ApiError when it is empty."""
    suffix = Path(upload.filename or "").suffix.lower()
    path = Path(folder) / ("upload" + (suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""))
    size = 0
    with open(path, "wb") as f:
        while chunk := await upload.read(1 << 20):
            f.write(chunk)
            size += len(chunk)
    if size == 0:
        raise ApiError(400, f"file {upload.filename or 'upload'!r} is empty (0 bytes)", "empty_file")
    return path


def _audio_error(e: AudioError, path: Path, name: str) -> ApiError:
    """The worker's AudioError, naming the upload rather than its temporary copy."""
    message = str(e).replace(str(path), name)
    if isinstance(e, worker.AudioTooLong):
        return ApiError(413, message, "audio_too_long")
    return ApiError(400, f"{message}: send audio or video (wav, flac, ogg, mp3, m4a, webm, mp4, ...)",
                    "invalid_audio")


async def transcribe_upload(server: Server, request) -> tuple:
    """Admit, read the form, write the upload into a temporary folder (removed afterwards) and
    transcribe it in a worker."""
    try:
        slot = server.jobs.admit()
    except Busy as e:
        raise ApiError(503, "the server is busy (its queue is full): retry later", "server_busy",
                       {"Retry-After": str(e.retry_after)}) from None
    form = None
    try:
        form = await request.form(max_files=4, max_fields=32)
        req = parse_form(form, request.headers.get("content-type", ""))
        name = req.upload.filename or "upload"
        with tempfile.TemporaryDirectory(prefix="asr-serve-") as folder:
            path = await save_upload(req.upload, folder)
            try:
                result = await server.jobs.run(slot, worker.transcribe_file, str(path),
                                               server.settings.max_audio_s)
            except AudioError as e:
                raise _audio_error(e, path, name) from None
            except WorkerDied as e:
                raise ApiError(500, str(e), "worker_died") from None
        return result, req
    finally:
        slot.release()
        if form is not None:
            await form.close()


# ---------------------------------------------------------------- the application

def create_app(settings: ServeSettings, model=None):
    """The FastAPI application for settings; model: the asr.load()ed model (loaded here when
    None)."""
    from fastapi import FastAPI, Request, WebSocket
    from fastapi.responses import FileResponse, PlainTextResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException
    server = Server(settings, model if model is not None else worker.load_model(settings))

    @asynccontextmanager
    async def lifespan(app):
        await server.start()
        yield
        server.stop()

    app = FastAPI(title="asr serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.server = server
    app.add_middleware(Guard, api_key=settings.api_key, max_bytes=int(settings.max_upload_mb * 1e6))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(ApiError)
    async def api_error(request, e):
        return error_response(e)

    @app.exception_handler(HTTPException)
    async def http_error(request, e):
        codes = {404: "not_found", 405: "method_not_allowed", 400: "invalid_request"}
        return json_response(error_body(e.status_code, str(e.detail), codes.get(e.status_code)),
                     e.status_code, getattr(e, "headers", None))

    @app.get("/")
    async def page():
        return FileResponse(STATIC / "index.html")

    @app.get("/health")
    async def health():
        jobs = server.jobs
        return {"status": "ok", "model": settings.model_name, "stream_mode": server.mode,
                "workers": settings.workers, "busy": jobs.taken if jobs else 0,
                "slots": jobs.slots if jobs else 0}

    @app.get("/v1/models")
    async def models():
        created = int(Path(settings.model).stat().st_mtime) if Path(settings.model).exists() else 0
        return {"object": "list", "data": [{"id": settings.model_name, "object": "model",
                                            "created": created, "owned_by": "asr"}]}

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request):
        try:
            result, req = await asyncio.wait_for(transcribe_upload(server, request), settings.timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(504, f"the request took longer than the server's {settings.timeout_s:g} s "
                                "(asr serve --timeout-s)", "timeout") from None
        headers = {}
        if req.ignored:
            log.info("request fields without effect here: %s", ", ".join(req.ignored))
            headers["X-Ignored-Fields"] = ", ".join(req.ignored)
        body = render(result, req.response_format, req.words, req.language)
        if isinstance(body, dict):
            return json_response(body, headers=headers)
        return PlainTextResponse(body, media_type=MEDIA_TYPES[req.response_format], headers=headers)

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket):
        await stream_socket(server, ws)

    return app
