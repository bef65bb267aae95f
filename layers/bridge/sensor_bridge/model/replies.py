"""What the bridge answers over HTTP, and the errors that become 4xx/5xx answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


class RequestError(Exception):
    """A request we refuse. Rendered as `{"error": {"code", "message"}}` like the API's own."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def reply(self) -> HttpReply:
        return error_reply(self.status, self.code, self.message, self.headers)


def error_reply(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> HttpReply:
    return HttpReply(status, {"error": {"code": code, "message": message}}, headers or {})


def bad_request(message: str) -> RequestError:
    return RequestError(400, "InvalidPayload", message)


def unsupported_media(message: str) -> RequestError:
    return RequestError(415, "UnsupportedMediaType", message)
