"""`asr serve MODEL [flags]`: argparse only; each flag is the ServeSettings field of its name."""

from __future__ import annotations

import dataclasses
import os


def add_commands(sub, stage=None) -> None:
    """Register `asr serve` on the `asr` parser."""
    p = sub.add_parser("serve", help="a transcription server: OpenAI-style HTTP API, WebSocket stream, "
                                     "browser page",
                       description="Serve a model over HTTP: POST /v1/audio/transcriptions (OpenAI's audio "
                                   "API shapes), the WebSocket /v1/stream, a page at / (docs/serving.md).")
    p.add_argument("model", help="bundle (asr bundle), run folder or checkpoint file")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s, this machine only; 0.0.0.0: all)")
    p.add_argument("--port", type=int, default=8000, help="(default: %(default)s)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes running the network, each with its own model (default: %(default)s)")
    p.add_argument("--queue", type=int, default=16,
                   help="requests waiting beyond the running ones; more get 503 (default: %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=25.0,
                   help="largest request body in MB; more gets 413 (default: %(default)s)")
    p.add_argument("--max-audio-s", type=float, default=600.0,
                   help="longest audio per request or streamed utterance; more gets 413 (default: %(default)s)")
    p.add_argument("--timeout-s", type=float, default=120.0,
                   help="a request that takes longer, queue wait included, gets 504 (default: %(default)s)")
    p.add_argument("--api-key", default=os.environ.get("ASR_API_KEY") or None,
                   help="require 'Authorization: Bearer KEY' on all but /, /static and /health "
                        "(default: $ASR_API_KEY, else none)")
    p.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu or cuda "
                                                    "(default: %(default)s)")
    p.add_argument("--decoder", help="greedy, beam or beam_lm (default: the model's best)")
    p.add_argument("--name", default="", help="the model name /v1/models reports (default: the folder's)")
    p.add_argument("--max-streams", type=int, default=4,
                   help="WebSocket streams open at once (default: %(default)s)")
    p.add_argument("--chunk-ms", type=int, default=200,
                   help="streaming models: audio per network step in ms (default: %(default)s)")
    p.add_argument("--pause-s", type=float, default=0.6,
                   help="other models: a pause this long ends a streamed segment (default: %(default)s)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    from asr.serve import ServeSettings, serve
    serve(ServeSettings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ServeSettings)}))
    return 0
