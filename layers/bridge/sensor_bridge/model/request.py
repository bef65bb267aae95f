"""The parts of an HTTP request the bridge looks at, independent of how it arrived."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WebhookRequest:
    method: str
    source: str
    headers: dict[str, str]  # lower-case names
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    request_id: str | None = None

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()

    @classmethod
    def from_http_api_event(cls, event: dict[str, Any], source: str) -> WebhookRequest:
        """Build from an API Gateway HTTP API (payload format 2.0) event."""
        raw_body = event.get("body") or ""
        # surrogatepass: a lone surrogate in the event's JSON must reach the body parser, which
        # refuses bytes that are not UTF-8 with a 400, instead of crashing here.
        body = (
            base64.b64decode(raw_body)
            if event.get("isBase64Encoded")
            else raw_body.encode("utf-8", "surrogatepass")
        )
        context = event.get("requestContext") or {}
        return cls(
            method=(context.get("http") or {}).get("method", "POST").upper(),
            source=source,
            headers={k.lower(): v for k, v in (event.get("headers") or {}).items()},
            query=dict(event.get("queryStringParameters") or {}),
            body=body,
            request_id=context.get("requestId"),
        )
