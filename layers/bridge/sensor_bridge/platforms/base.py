"""The interface every platform adapter implements, and helpers they share."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError

from sensor_bridge.model.config import Source
from sensor_bridge.model.device_event import DeviceEvent, Location
from sensor_bridge.model.replies import HttpReply, bad_request, unsupported_media
from sensor_bridge.model.request import WebhookRequest

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


# No platform nests its payload anywhere near this deep (an IoT Hub twin allows 10 levels). The
# limit keeps what the adapters, pydantic and the logger walk bounded, whatever the stack depth.
MAX_JSON_DEPTH = 64


def json_body(request: WebhookRequest) -> Any:
    """The parsed JSON body; 400 when it is not JSON or nests deeper than MAX_JSON_DEPTH.

    Reachable before authentication (AWS IoT's destination confirmation), so nothing a stranger
    sends may crash it: a body of 100k `[` makes `json.loads` itself raise RecursionError.
    """
    if request.content_type and "json" not in request.content_type:
        raise unsupported_media(f"expected a JSON body, got content type {request.content_type!r}")
    try:
        value = json.loads(request.body, parse_constant=_not_json, parse_float=_finite)
    except (UnicodeDecodeError, ValueError):
        raise bad_request("the body is not valid JSON") from None
    except RecursionError:
        raise bad_request(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels") from None
    if _too_deep(value, MAX_JSON_DEPTH):
        raise bad_request(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def _not_json(constant: str) -> Any:
    # Python reads NaN, Infinity and -Infinity; JSON has no such numbers (RFC 8259), and neither
    # has the GeoJSON the bridge sends on.
    raise ValueError(f"{constant} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 reads as infinity
        raise ValueError(f"{text} is out of range")
    return value


def _too_deep(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels (walked without recursion)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        current, depth = pending.pop()
        if isinstance(current, dict):
            children: Any = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def location(latitude: Any, longitude: Any, altitude: Any = None) -> Location:
    """A WGS84 point from a platform's values; ValueError when they are not one."""
    lat, lon = float(latitude), float(longitude)
    alt = float(altitude) if altitude is not None and altitude != "" else None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (alt is not None and not math.isfinite(alt)):
        raise ValueError(f"({latitude}, {longitude}) is not a latitude/longitude pair")
    return Location(lat, lon, alt)


# An ISO 8601 date-time with a UTC offset (or Z), fractional seconds of any length.
_ISO_INSTANT = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:[.,](\d+))?(Z|z|[+-]\d{2}:?\d{2})$"
)
# 1970 .. 9999-12-31: anything outside is no instant a platform means.
_LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
_MILLISECONDS_FROM = 1e11  # as seconds, the year 5138: a number this large counts milliseconds


def iso_instant(value: Any) -> float | None:
    """Epoch seconds of an ISO 8601 date-time with a zone (`2024-05-01T10:00:00.1234567Z`), or None.

    Platforms send more than the microseconds Python keeps (Event Grid 7 digits, ChirpStack and
    The Things Stack 9): they are cut off. No zone, no instant: a local time is not an order. A
    timestamp never makes a request fail, it is only left out.
    """
    if not isinstance(value, str):
        return None
    match = _ISO_INSTANT.match(value.strip())
    if match is None:
        return None
    day, time, fraction, zone = match.groups()
    if zone in ("Z", "z"):
        zone = "+00:00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    text = f"{day}T{time}" + (f".{fraction[:6].ljust(6, '0')}" if fraction else "") + zone
    try:
        seconds = datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError):
        return None
    return seconds if 0 <= seconds <= _LATEST else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def epoch_instant(value: Any, *, milliseconds: bool = False) -> float | None:
    """Epoch seconds from a number of seconds (or milliseconds), or None when it is not one."""
    number = _number(value)
    if number is None:
        return None
    if milliseconds:
        number /= 1000
    return number if 0 <= number <= _LATEST else None


def instant(value: Any) -> float | None:
    """Epoch seconds from an ISO 8601 string or an epoch number (milliseconds when it is too
    large to be seconds), for a value whose form the platform does not fix."""
    found = iso_instant(value)
    if found is not None:
        return found
    number = _number(value)
    if number is None:
        return None
    return epoch_instant(number, milliseconds=number >= _MILLISECONDS_FROM)


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
