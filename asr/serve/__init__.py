"""`asr serve MODEL`: a transcription server with a browser page.

    from asr.serve import ServeSettings, serve
    serve(ServeSettings("exp/builtin/bundle", port=8000, workers=2))

Endpoints (docs/serving.md): POST /v1/audio/transcriptions (the OpenAI audio API's request and
response shapes), the WebSocket /v1/stream (live PCM in, partial and final texts out), GET /
(a page: upload a file or speak into the microphone), GET /health, GET /v1/models.

Needs the `serve` extra (FastAPI, uvicorn, python-multipart, websockets); this module imports
none of it, so that `asr --help` stays instant and works without it.
"""

from __future__ import annotations

import logging

from asr.serve.settings import ServeSettings

log = logging.getLogger(__name__)

__all__ = ["ServeSettings", "create_app", "serve"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def create_app(settings: ServeSettings, model=None):
    """The FastAPI application (asr.serve.app.create_app), for running under any ASGI server."""
    from asr.serve.app import create_app as make
    return make(settings, model)


def serve(settings: ServeSettings) -> None:
    """Load the model (errors here, before anything listens), then serve until interrupted."""
    try:
        import uvicorn
        from asr.serve.app import create_app as make
    except ImportError as e:
        raise RuntimeError(f"asr serve needs the serve extra ({e.name} is missing): "
                           "pip install 'asr-ctc[serve]'") from None
    import torch
    from asr.serve.worker import load_model
    torch.set_num_threads(1)  # this process only streams, one recogniser per thread; workers decode
    if settings.workers < 1 or settings.queue < 0:
        raise ValueError(f"--workers {settings.workers} / --queue {settings.queue}: need workers >= 1, queue >= 0")
    app = make(settings, load_model(settings))
    if settings.host not in LOOPBACK:
        log.warning("listening on %s: reachable from other machines%s", settings.host,
                    "" if settings.api_key else ", with no API key (--api-key or ASR_API_KEY)")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info",
                timeout_graceful_shutdown=5)
