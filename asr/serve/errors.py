"""Errors as the OpenAI API reports them: an HTTP status and {"error": {"message", "type", "code"}}."""

from __future__ import annotations

# the "type" of each status, as OpenAI names them
_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
          405: "invalid_request_error", 413: "invalid_request_error", 500: "server_error",
          503: "server_error", 504: "server_error"}


class ApiError(Exception):
    """A request that cannot be answered: status, a message saying what is wrong, a short code;
    headers: extra response headers (Retry-After, WWW-Authenticate)."""

    def __init__(self, status: int, message: str, code: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers = headers or {}

    def body(self) -> dict:
        return error_body(self.status, self.message, self.code)


def error_body(status: int, message: str, code: str | None) -> dict:
    return {"error": {"message": message, "type": _TYPES.get(status, "invalid_request_error"),
                      "param": None, "code": code}}


def json_response(body: dict, status: int = 200, headers: dict | None = None):
    from fastapi.responses import JSONResponse  # the serve extra, imported when used
    return JSONResponse(body, status, headers=headers)


def error_response(e: ApiError):
    return json_response(e.body(), e.status, e.headers)
