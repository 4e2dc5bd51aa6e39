"""What `asr serve` runs with: one typed dataclass, mapped one to one from the command line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServeSettings:
    """The server's settings; `asr serve --flag` sets the field of the same name."""

    model: str  # bundle, run folder or checkpoint file, resolved by asr.load
    host: str = "127.0.0.1"  # loopback by default: exposing the server is a decision, not an accident
    port: int = 8000
    workers: int = 1  # processes running the network (each holds its own copy of the model)
    queue: int = 16  # requests waiting beyond the running ones; more are refused with 503
    max_upload_mb: float = 25.0  # largest request body (OpenAI's limit too); more: 413
    max_audio_s: float = 600.0  # longest audio per request, and per streamed utterance; more: 413
    timeout_s: float = 120.0  # a request, queue wait included, that takes longer gets 504
    api_key: str | None = None  # when set, a Bearer token required on all but /, /static and /health
    device: str = "auto"  # auto (CUDA when there is one), cpu or cuda
    decoder: str | None = None  # greedy, beam, beam_lm; None: the model's best
    name: str = ""  # the model name /v1/models reports ("": the model folder's name)
    max_streams: int = 4  # WebSocket streams open at once; more are refused
    chunk_ms: int = 200  # streaming models: audio per network step
    pause_s: float = 0.6  # other models: a pause this long after the last word ends a streamed segment

    @property
    def model_name(self) -> str:
        return self.name or Path(self.model).resolve().name
