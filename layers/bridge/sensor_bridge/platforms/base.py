"""The interface every platform adapter implements, and helpers they share."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError

from sensor_bridge.config import Source
from sensor_bridge.device_event import DeviceEvent, Location
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
    # True when the platform sends its handshake without the source's credentials (AWS IoT's
    # destination confirmation carries none of the rule's headers): it is answered before
    # authentication, so it must do nothing a stranger could abuse.
    handshake_before_auth: bool

    def handshake(self, request: WebhookRequest, source_name: str, source: Source) -> HttpReply | None:
        """The reply to a platform's subscription handshake, or None if this is not one."""
        ...

    def parse(self, request: WebhookRequest, source_name: str, source: Source) -> ParseResult:
        """The device events in the request; raises RequestError (400/415) for a malformed body."""
        ...


class WithoutHandshake:
    """For platforms that subscribe a webhook without any handshake."""

    handshake_before_auth = False

    def handshake(self, request: WebhookRequest, source_name: str, source: Source) -> HttpReply | None:
        return None


def json_body(request: WebhookRequest) -> Any:
    if request.content_type and "json" not in request.content_type:
        raise unsupported_media(f"expected a JSON body, got content type {request.content_type!r}")
    try:
        return json.loads(request.body)
    except (UnicodeDecodeError, ValueError):
        raise bad_request("the body is not valid JSON") from None


def location(latitude: Any, longitude: Any, altitude: Any = None) -> Location:
    """A WGS84 point from a platform's values; ValueError when they are not one."""
    lat, lon = float(latitude), float(longitude)
    alt = float(altitude) if altitude is not None and altitude != "" else None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (alt is not None and not math.isfinite(alt)):
        raise ValueError(f"({latitude}, {longitude}) is not a latitude/longitude pair")
    return Location(lat, lon, alt)


def form_body(request: WebhookRequest) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body, one value per field (the last one wins)."""
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("the form-encoded body is not UTF-8") from None
    return dict(parse_qsl(text, keep_blank_values=True))


def validate(model: type[M], data: Any, what: str) -> M:
    """Parse a platform payload, naming the first wrong field in the 400 answer."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(body)"
        raise bad_request(f"{what}: field {where}: {first['msg']}") from None
