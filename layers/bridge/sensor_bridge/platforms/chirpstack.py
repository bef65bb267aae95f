"""ChirpStack v4 HTTP integration: `POST ?event=join` and `?event=up` (JSON marshaler).

ChirpStack names the event in the query string and marshals the body as JSON (camelCase, the
protobuf JSON mapping) or as binary protobuf, chosen per integration. Only `join` and `up` say
a device exists; `status`, `ack`, `txack`, `log`, `location` and `integration` are ignored.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sensor_bridge.model.config import Source
from sensor_bridge.model.device_event import DeviceEvent, Lifecycle
from sensor_bridge.model.readings import flatten
from sensor_bridge.model.replies import bad_request, unsupported_media
from sensor_bridge.model.request import WebhookRequest
from sensor_bridge.platforms.base import ParseResult, WithoutHandshake, iso_instant, json_body, validate
from sensor_bridge.platforms.identity import Eui64, EventId

DEVICE_EVENTS = ("join", "up")


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DeviceInfo(_Loose):
    devEui: Eui64
    deviceName: str | None = None
    deviceProfileName: str | None = None
    deviceProfileId: str | None = None
    applicationId: str | None = None
    applicationName: str | None = None
    tenantId: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class ChirpStackEvent(_Loose):
    """The fields `JoinEvent` and `UplinkEvent` share (chirpstack/api/proto/integration)."""

    deduplicationId: EventId | None = None
    time: Any = None  # protobuf Timestamp JSON (RFC 3339, up to 9 fractional digits)
    deviceInfo: DeviceInfo
    object: Any = None  # `up` only: what the codec decoded from the payload, the device's values


class ChirpStack(WithoutHandshake):
    name = "chirpstack"

    def parse(self, request: WebhookRequest, source_name: str, source: Source) -> ParseResult:
        # Checked first: with protobuf every event is unreadable, so say so even for ignored ones.
        if request.content_type in ("application/octet-stream", "application/x-protobuf"):
            raise unsupported_media(
                "ChirpStack sent protobuf: choose the JSON marshaler "
                "(payload encoding JSON) in the HTTP integration"
            )
        kind = request.query.get("event")
        if kind is None:
            raise bad_request(
                "query parameter event is missing: ChirpStack sends ?event=join, ?event=up, ..."
            )
        if kind not in DEVICE_EVENTS:
            return ParseResult.ignore(f"ChirpStack event {kind!r} is not about a device joining or sending")
        message = validate(ChirpStackEvent, json_body(request), f"ChirpStack {kind} event")
        info = message.deviceInfo
        # A join is rare and ChirpStack marks each with a deduplicationId; uplinks are frequent
        # and the device registry, not an idempotency record per uplink, tells a known device.
        event_id = (
            f"chirpstack:join:{message.deduplicationId}"
            if kind == "join" and message.deduplicationId
            else None
        )
        reading = None
        if kind == "up" and source.readings:
            up_id = f"chirpstack:up:{message.deduplicationId}" if message.deduplicationId else None
            reading = flatten(message.object, iso_instant(message.time), up_id)
        return ParseResult(
            [
                DeviceEvent(
                    reading=reading,
                    source=source_name,
                    platform=self.name,
                    device_id=info.devEui.lower(),  # a DevEUI is global; ChirpStack writes it lower-case
                    lifecycle=Lifecycle.APPEARED,
                    event_id=event_id,
                    name=info.deviceName,
                    profile_name=info.deviceProfileName,
                    tags=dict(info.tags),
                    occurred_at=iso_instant(message.time),
                )
            ]
        )


ADAPTER = ChirpStack()
