"""The guards of `asr serve` in front of the app: the API key (a Bearer token) and the largest
request body, as ASGI middleware (Guard), and the key check the WebSocket shares."""

import asyncio
import hmac

from asr.serve.errors import ApiError, error_response

OPEN_PATHS = ("/", "/health", "/favicon.ico")  # and /static/*: no API key needed


def bearer_ok(headers, api_key: str | None) -> bool:
    if not api_key:
        return True
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), api_key.encode())


def unauthorized() -> ApiError:
    return ApiError(401, "missing or wrong API key: send the header 'Authorization: Bearer KEY'",
                    "invalid_api_key", {"WWW-Authenticate": "Bearer"})


class _TooLarge(Exception):
    """The body grew past the limit while the app read it."""


class _Body:
    """A request's body as the app reads it: counted (_TooLarge past max_bytes), and what is
    left of it read and dropped before an early answer (drain)."""

    def __init__(self, receive, max_bytes: int):
        self.raw, self.max_bytes = receive, max_bytes
        self.seen, self.ended = 0, False

    def _count(self, message: dict) -> None:
        self.seen += len(message.get("body", b""))
        self.ended = message["type"] != "http.request" or not message.get("more_body")

    async def receive(self) -> dict:
        message = await self.raw()
        self._count(message)
        if self.seen > self.max_bytes:
            raise _TooLarge()
        return message

    async def drain(self, limit: int, idle_s: float = 1.0) -> None:
        """Read and drop the rest, up to limit bytes in all, while the client sends it (a
        client that stalled for idle_s is not waited for)."""
        while not self.ended and self.seen <= limit:
            try:
                self._count(await asyncio.wait_for(self.raw(), idle_s))
            except asyncio.TimeoutError:
                return


class Guard:
    """ASGI middleware for HTTP: the API key (all but the page and /health) and the largest
    body (a Content-Length over it, or a body that grows past it while read: 413).

    An answer that comes before the body was read (401, 413, 503, ...) waits until the rest of
    the body, up to drain_factor times the limit, has been read and dropped (_Body.drain):
    closing a connection with unread data resets it, and a client still sending would see a
    broken connection instead of the answer."""

    drain_factor = 4

    def __init__(self, app, api_key: str | None, max_bytes: int):
        self.app, self.api_key, self.max_bytes = app, api_key, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body = _Body(receive, self.max_bytes)

        async def answer(message):
            if message["type"] == "http.response.start":
                await body.drain(self.drain_factor * self.max_bytes)
            await send(message)
        too_large = error_response(ApiError(
            413, f"request body over the server's limit of {self.max_bytes / 1e6:g} MB "
                 "(asr serve --max-upload-mb)", "file_too_large"))
        path, length = scope["path"], headers.get("content-length", "")
        if not (path in OPEN_PATHS or path.startswith("/static/")) and not bearer_ok(headers, self.api_key):
            return await error_response(unauthorized())(scope, body.receive, answer)
        if length.isdigit() and int(length) > self.max_bytes:
            return await too_large(scope, body.receive, answer)
        try:
            await self.app(scope, body.receive, answer)
        except _TooLarge:
            await too_large(scope, body.receive, answer)
