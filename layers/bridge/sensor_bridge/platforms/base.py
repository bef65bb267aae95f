"""The interface every platform adapter implements, and helpers they share."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from sensor_bridge.config import Source
from sensor_bridge.device_event import DeviceEvent
from sensor_bridge.replies import HttpReply, bad_request, unsupported_media
from sensor_bridge.webhook_request import WebhookRequest

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class ParseResult:
    events: list[DeviceEvent] = field(default_factory=list)
    ignored: str | None = None  # why nothing in this request is about a device's lifecycle

    @classmethod
    def ignore(cls, reason: str) -> ParseResult:
        return cls(events=[], ignored=reason)


class Platform(Protocol):
    name: str

    def handshake(self, request: WebhookRequest, source_name: str, source: Source) -> HttpReply | None:
        """The reply to a platform's subscription handshake, or None if this is not one."""
        ...

    def parse(self, request: WebhookRequest, source_name: str, source: Source) -> ParseResult:
        """The device events in the request; raises RequestError (400/415) for a malformed body."""
        ...


def json_body(request: WebhookRequest) -> Any:
    if request.content_type and "json" not in request.content_type:
        raise unsupported_media(f"expected a JSON body, got content type {request.content_type!r}")
    try:
        return json.loads(request.body)
    except (UnicodeDecodeError, ValueError):
        raise bad_request("the body is not valid JSON") from None


def validate(model: type[M], data: Any, what: str) -> M:
    """Parse a platform payload, naming the first wrong field in the 400 answer."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(body)"
        raise bad_request(f"{what}: field {where}: {first['msg']}") from None
