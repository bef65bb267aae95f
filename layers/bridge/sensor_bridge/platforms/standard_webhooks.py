"""Any sender that signs per Standard Webhooks, mapped by configuration instead of code.

The body is whatever the sender defines; the source's `mapping` names, as dotted paths (list
items by index: `devices.0.id`), where the device's identity, name, model, profile name, tags,
location and the event's type are; a reading event (`reading_types`) carries the object of values
at `reading`, measured at `occurred_at`. The signature was checked before parsing (auth.py);
`webhook-id` is the event id, the same on every retry of one message.
"""

from __future__ import annotations

import re
from typing import Any

from sensor_bridge.model.config import FieldMapping, Source
from sensor_bridge.model.device_event import DeviceEvent, Lifecycle, Location
from sensor_bridge.model.readings import Reading, flatten
from sensor_bridge.model.replies import bad_request
from sensor_bridge.model.request import WebhookRequest
from sensor_bridge.platforms.base import ParseResult, WithoutHandshake, instant, json_body, location
from sensor_bridge.platforms.identity import checked_event_id

_MISSING = object()
# The sender defines its ids; the bridge takes those that are safe in a URL, a log line and a
# key: 1-128 ASCII letters, digits and . _ : / @ + # = ~ -
_DEVICE_ID = re.compile(r"[A-Za-z0-9._:/@+#=~-]{1,128}")


def lookup(data: Any, path: str) -> Any:
    """The value at a dotted path, or _MISSING."""
    current = data
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def _text(data: Any, path: str | None, *, required: bool = False) -> str | None:
    if path is None:
        return None
    value = lookup(data, path)
    if value is _MISSING or value is None or value == "":
        if required:
            raise bad_request(f"field {path}: required by this source's mapping, but absent or empty")
        return None
    if isinstance(value, dict | list):
        raise bad_request(f"field {path}: expected a string or number, got {type(value).__name__}")
    return str(value)


class StandardWebhooks(WithoutHandshake):
    name = "standard-webhooks"

    def parse(self, request: WebhookRequest, source_name: str, source: Source) -> ParseResult:
        mapping = source.mapping
        assert mapping is not None  # the configuration refuses a standard-webhooks source without one
        body = json_body(request)
        if not isinstance(body, dict):
            raise bad_request(f"the body must be a JSON object, not {_json_type(body)}")
        reads = _is_reading(body, mapping)
        lifecycle = Lifecycle.APPEARED if reads else _lifecycle(body, mapping)
        if reads and not source.readings:
            return ParseResult.ignore("readings are switched off for this source")
        if lifecycle is None:
            kind = _text(body, mapping.event_type)
            return ParseResult.ignore(f"event type {kind!r} is not listed in this source's mapping")
        device_id = _text(body, mapping.device_id, required=True)
        assert device_id is not None
        if not _DEVICE_ID.fullmatch(device_id):
            raise bad_request(
                f"field {mapping.device_id}: must be 1-128 ASCII letters, digits and . _ : / @ + # = ~ -"
            )
        webhook_id = checked_event_id(request.header("webhook-id"), "header webhook-id")
        # webhook-id is unique per sender only, so it is scoped by the source.
        event_id = f"standard-webhooks:{source_name}:{webhook_id}" if webhook_id else None
        return ParseResult(
            [
                DeviceEvent(
                    source=source_name,
                    platform=self.name,
                    device_id=device_id,
                    lifecycle=lifecycle,
                    # A reading event only says the device is there: the rest is known from before.
                    announced=not reads,
                    partial=reads,
                    event_id=event_id,
                    name=_text(body, mapping.name),
                    model=_text(body, mapping.model),
                    profile_name=_text(body, mapping.profile_name),
                    tags=_tags(body, mapping.tags),
                    location=_location(body, mapping),
                    occurred_at=_occurred_at(body, mapping.occurred_at),
                    reading=_reading(body, mapping, event_id) if reads else None,
                )
            ]
        )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def _is_reading(body: Any, mapping: FieldMapping) -> bool:
    return bool(mapping.reading_types) and _text(body, mapping.event_type) in mapping.reading_types


def _reading(body: Any, mapping: FieldMapping, message_id: str | None) -> Reading | None:
    assert mapping.reading is not None  # the configuration requires it with reading_types
    values = lookup(body, mapping.reading)
    if values is _MISSING:
        return None
    return flatten(values, _occurred_at(body, mapping.occurred_at), message_id)


def _lifecycle(body: Any, mapping: FieldMapping) -> Lifecycle | None:
    if mapping.event_type is None:
        return Lifecycle.APPEARED  # no types configured: every message is about a device being there
    kind = _text(body, mapping.event_type)
    for types, lifecycle in (
        (mapping.appeared_types, Lifecycle.APPEARED),
        (mapping.changed_types, Lifecycle.CHANGED),
        (mapping.removed_types, Lifecycle.REMOVED),
    ):
        if kind in types:
            return lifecycle
    return None


def _tags(body: Any, path: str | None) -> dict[str, str]:
    if path is None:
        return {}
    value = lookup(body, path)
    if value is _MISSING or value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"field {path}: expected an object of tags")
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str | int | float | bool)}


def _location(body: Any, mapping: FieldMapping) -> Location | None:
    if mapping.latitude is None or mapping.longitude is None:
        return None
    lat, lon = _text(body, mapping.latitude), _text(body, mapping.longitude)
    if lat is None or lon is None:
        return None
    try:
        return location(lat, lon, _text(body, mapping.altitude))
    except ValueError:
        raise bad_request(
            f"fields {mapping.latitude}, {mapping.longitude}: not a latitude/longitude pair"
        ) from None


def _occurred_at(body: Any, path: str | None) -> float | None:
    # Not webhook-timestamp: that is when this message was sent (and resent), not when the event
    # happened. Only the sender's own field, when the mapping names one, tells that.
    if path is None:
        return None
    value = lookup(body, path)
    return None if value is _MISSING else instant(value)


ADAPTER = StandardWebhooks()
