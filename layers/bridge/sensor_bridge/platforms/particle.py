"""Particle webhooks: the default form-encoded body, or a JSON template.

The default body has `event`, `data`, `published_at` and `coreid` (plus `userid`, `fw_version`,
`public`). A JSON template names its own keys; the bridge reads the same four, and
`PARTICLE_EVENT_ID` and `PRODUCT_ID` when the template adds them. The cloud's `spark/status`
event with data `online` announces a device; any other event the webhook forwards is the
device's first message as far as the bridge knows, so it is an upsert too.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from sensor_bridge.model.config import Source
from sensor_bridge.model.device_event import DeviceEvent, Lifecycle
from sensor_bridge.model.readings import Reading, flatten
from sensor_bridge.model.replies import unsupported_media
from sensor_bridge.model.request import WebhookRequest
from sensor_bridge.platforms.base import (
    ParseResult,
    WithoutHandshake,
    form_body,
    iso_instant,
    json_body,
    validate,
)
from sensor_bridge.platforms.identity import EventId, identifier

STATUS_EVENT = "spark/status"


class ParticleEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    event: str = Field(min_length=1)
    data: str | None = None
    published_at: Any = None  # ISO 8601; read leniently, never a reason to refuse the event
    coreid: Annotated[str, identifier(r"[0-9a-fA-F]{24}", "24 hex digits (a Particle device id)")]
    PARTICLE_EVENT_ID: EventId | None = None
    PRODUCT_ID: Annotated[str, identifier(r"[0-9]{1,10}", "a number (a Particle product id)")] | None = None


class Particle(WithoutHandshake):
    name = "particle"

    def parse(self, request: WebhookRequest, source_name: str, source: Source) -> ParseResult:
        message = validate(ParticleEvent, _body(request), "Particle event")
        if message.event == STATUS_EVENT and (message.data or "").strip() != "online":
            return ParseResult.ignore(f"Particle {STATUS_EVENT} {message.data!r} does not announce a device")
        device = message.coreid.lower()
        event_id = f"particle:{message.PARTICLE_EVENT_ID}" if message.PARTICLE_EVENT_ID else None
        reading = _reading(message, event_id or _publish_id(device, message)) if source.readings else None
        return ParseResult(
            [
                DeviceEvent(
                    source=source_name,
                    platform=self.name,
                    device_id=device,
                    lifecycle=Lifecycle.APPEARED,
                    # Particle delivers at least once; only a template that adds the id lets us tell.
                    event_id=event_id,
                    reading=reading,
                    name=device,  # the webhook carries no device name
                    model=f"product-{message.PRODUCT_ID}" if message.PRODUCT_ID else None,
                    occurred_at=iso_instant(message.published_at),
                    partial=True,  # only a template that adds PRODUCT_ID tells the model
                )
            ]
        )


def _publish_id(device: str, message: ParticleEvent) -> str | None:
    # Without PARTICLE_EVENT_ID: device, event name and publish time tell a resend.
    if message.published_at is None:
        return None
    return f"particle:{device}:{message.event}:{message.published_at}"


def _reading(message: ParticleEvent, message_id: str | None) -> Reading | None:
    """`data` holding JSON: an object is the payload; a bare number is the value of the event's
    name (`temperature` published with data `21.5`). Cloud (`spark/...`) events carry none."""
    if message.event.startswith("spark/") or not message.data:
        return None
    try:
        data = json.loads(message.data)
    except (ValueError, RecursionError):
        return None
    if isinstance(data, int | float) and not isinstance(data, bool):
        data = {message.event: data}
    return flatten(data, iso_instant(message.published_at), message_id)


def _body(request: WebhookRequest) -> Any:
    if request.content_type == "application/x-www-form-urlencoded":
        return form_body(request)
    if not request.content_type or "json" in request.content_type:
        return json_body(request)
    raise unsupported_media(
        f"expected Particle's form-encoded body or a JSON template, got content type {request.content_type!r}"
    )


ADAPTER = Particle()
