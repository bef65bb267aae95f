"""Azure IoT Hub device lifecycle events, delivered by an Event Grid webhook subscription.

Two delivery schemas, chosen per subscription:
- Event Grid schema: a JSON array of `{id, topic, subject, eventType, eventTime, data}`; the
  subscription is validated by a `Microsoft.EventGrid.SubscriptionValidationEvent` answered with
  `{"validationResponse": data.validationCode}`.
- CloudEvents 1.0: `{specversion, type, source, id, time, subject, data}`, one event or a batch
  (array); the endpoint is validated by an `OPTIONS` request carrying `WebHook-Request-Origin`,
  answered with `WebHook-Allowed-Origin` (and `WebHook-Allowed-Rate`).
`Microsoft.Devices.DeviceCreated` announces a device (with its twin), `DeviceDeleted` removes it;
`DeviceTelemetry` (IoT Hub message routing to Event Grid) carries a reading in `data.body`;
connection events are ignored.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from sensor_bridge.model.config import Source
from sensor_bridge.model.device_event import DeviceEvent, Lifecycle
from sensor_bridge.model.readings import flatten
from sensor_bridge.model.replies import HttpReply, bad_request
from sensor_bridge.model.request import WebhookRequest
from sensor_bridge.platforms.azure_twin import twin_location
from sensor_bridge.platforms.base import ParseResult, iso_instant, json_body, validate
from sensor_bridge.platforms.identity import EventId, identifier

VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
TELEMETRY = "Microsoft.Devices.DeviceTelemetry"
# Event Grid says in this header which kind of delivery it is; only a validation is answered
# with the code, so a body alone cannot make the bridge echo what it contains.
EVENT_TYPE_HEADER = "aeg-event-type"
VALIDATION_DELIVERY = "SubscriptionValidation"
# Azure's naming rules: an IoT hub name is 3-50 letters, digits and dashes; a device id up to 128
# ASCII letters, digits and - . + % _ # * ? ! ( ) , : = @ $ '.
HubName = Annotated[
    str,
    identifier(
        r"[A-Za-z0-9](?:[A-Za-z0-9-]{1,48}[A-Za-z0-9])", "3-50 letters, digits and dashes (an IoT hub name)"
    ),
]
DeviceId = Annotated[
    str,
    identifier(
        r"[A-Za-z0-9\-.+%_#*?!(),:=@$']{1,128}", "1-128 letters, digits and - . + % _ # * ? ! ( ) , : = @ $ '"
    ),
]
LIFECYCLE = {
    "Microsoft.Devices.DeviceCreated": Lifecycle.APPEARED,
    "Microsoft.Devices.DeviceDeleted": Lifecycle.REMOVED,
}


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class EventGridEvent(_Loose):
    id: EventId
    eventType: str
    subject: str = ""
    eventTime: Any = None  # read leniently: a timestamp we cannot read is left out, not refused
    topic: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class CloudEvent(_Loose):
    specversion: str
    type: str
    source: str
    id: EventId
    time: Any = None
    subject: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class ValidationData(_Loose):
    validationCode: str = Field(min_length=1)
    validationUrl: str | None = None


class TwinProperties(_Loose):
    desired: dict[str, Any] = Field(default_factory=dict)
    reported: dict[str, Any] = Field(default_factory=dict)


class Twin(_Loose):
    deviceId: DeviceId | None = None
    modelId: str | None = None  # IoT Plug and Play model, when the device announces one
    tags: dict[str, Any] = Field(default_factory=dict)
    properties: TwinProperties = Field(default_factory=TwinProperties)


class DeviceLifecycleData(_Loose):
    hubName: HubName
    deviceId: DeviceId
    twin: Twin | None = None


PLATFORM = "azure-iot-hub"


class AzureEventGrid:
    name = PLATFORM
    handshake_before_auth = False

    def handshake(self, request: WebhookRequest, source_name: str, source: Source) -> HttpReply | None:
        if request.method == "OPTIONS":
            origin = request.header("webhook-request-origin")
            if not origin:
                raise bad_request("header WebHook-Request-Origin is required for the CloudEvents validation")
            # Allow the origin that asked; the rate is unlimited because the bridge queues on 429.
            return HttpReply(200, None, {"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"})
        if request.header(EVENT_TYPE_HEADER) != VALIDATION_DELIVERY:
            return None
        body = json_body(request)
        if not (isinstance(body, list) and len(body) == 1):
            raise bad_request("a subscription validation delivers an array of exactly one event")
        event = validate(EventGridEvent, body[0], "Event Grid subscription validation")
        if event.eventType != VALIDATION:
            raise bad_request(f"event [0]: field eventType: expected {VALIDATION!r} in a validation delivery")
        data = validate(ValidationData, event.data, "Event Grid subscription validation data")
        return HttpReply(200, {"validationResponse": data.validationCode})

    def parse(self, request: WebhookRequest, source_name: str, source: Source) -> ParseResult:
        events: list[DeviceEvent] = []
        skipped: set[str] = set()
        for index, envelope in enumerate(_envelopes(json_body(request))):
            where = f"event [{index}]"
            if envelope.kind == VALIDATION:
                raise bad_request(
                    f"{where}: a subscription validation needs {EVENT_TYPE_HEADER}: {VALIDATION_DELIVERY}"
                )
            if envelope.kind == TELEMETRY and source.readings:
                events.append(_telemetry(source_name, envelope, where))
                continue
            lifecycle = LIFECYCLE.get(envelope.kind)
            if lifecycle is None:
                skipped.add(envelope.kind)
                continue
            device = validate(DeviceLifecycleData, envelope.data, f"{envelope.kind} {where} data")
            _same_device(envelope, device, where)
            events.append(
                self._event(source_name, device, lifecycle, envelope.id, iso_instant(envelope.time))
            )
        if not events:
            return ParseResult.ignore(
                f"no device created or deleted in this delivery (event types: {', '.join(sorted(skipped))})"
            )
        return ParseResult(events)

    def _event(
        self,
        source_name: str,
        data: DeviceLifecycleData,
        lifecycle: Lifecycle,
        event_id: str,
        occurred_at: float | None,
    ) -> DeviceEvent:
        twin = data.twin or Twin()
        # Tags drive profile matching, which compares strings: nested objects (like a location)
        # are read separately, not flattened into tags.
        tags = {k: str(v) for k, v in twin.tags.items() if isinstance(v, str | int | float | bool)}
        return DeviceEvent(
            source=source_name,
            platform=self.name,
            # Device ids are unique within a hub; the hub name keeps two hubs on one source apart.
            device_id=f"{data.hubName}/{data.deviceId}",
            lifecycle=lifecycle,
            announced=True,
            event_id=f"eventgrid:{event_id}",  # Event Grid redelivers with the same id
            name=data.deviceId,
            model=twin.modelId or None,
            tags=tags,
            location=twin_location(twin.tags, twin.properties.reported, twin.properties.desired),
            occurred_at=occurred_at,
        )


@dataclass(frozen=True)
class _Envelope:
    """What the two schemas share: an event's type, id, time, topic, subject and data."""

    kind: str
    id: str
    time: Any
    topic: str | None
    subject: str | None
    data: dict[str, Any]


def _envelopes(body: Any) -> list[_Envelope]:
    """The events of a delivery. The Event Grid schema is always an array; CloudEvents one event
    (an object) or a batch (an array of them). Any other shape is refused, never guessed at."""
    if isinstance(body, dict) and "specversion" in body:
        return [_cloud_event(body, "CloudEvent")]
    if not isinstance(body, list) or not body:
        raise bad_request(
            "the body must be an array of Event Grid events, or CloudEvents (one object or an array)"
        )
    cloud = isinstance(body[0], dict) and "specversion" in body[0]
    envelopes = []
    for index, item in enumerate(body):
        if (isinstance(item, dict) and "specversion" in item) != cloud:
            raise bad_request(f"event [{index}]: one delivery mixes the Event Grid and CloudEvents schemas")
        envelopes.append(
            _cloud_event(item, f"CloudEvent event [{index}]") if cloud else _grid_event(item, index)
        )
    return envelopes


def _cloud_event(item: Any, what: str) -> _Envelope:
    event = validate(CloudEvent, item, what)
    return _Envelope(event.type, event.id, event.time, event.source, event.subject, event.data)


def _grid_event(item: Any, index: int) -> _Envelope:
    event = validate(EventGridEvent, item, f"Event Grid event [{index}]")
    return _Envelope(event.eventType, event.id, event.eventTime, event.topic, event.subject, event.data)


def _same_device(envelope: _Envelope, data: DeviceLifecycleData, where: str) -> None:
    """400 when the event's topic names another hub, or its subject or twin another device, than
    its data: one event has one identity, and the bridge will not choose between two."""
    hub = (envelope.topic or "").rstrip("/").rsplit("/", 1)[-1]
    if envelope.topic and hub.lower() != data.hubName.lower():  # Azure resource names ignore case
        raise bad_request(f"{where}: its topic names hub {hub!r}, its data.hubName {data.hubName!r}")
    if envelope.subject and envelope.subject != f"devices/{data.deviceId}":
        raise bad_request(
            f"{where}: its subject {envelope.subject!r} names another device than data.deviceId"
        )
    if data.twin is not None and data.twin.deviceId not in (None, data.deviceId):
        raise bad_request(f"{where}: data.twin.deviceId names another device than data.deviceId")


class TelemetryDevice(_Loose):
    hub: HubName
    device: DeviceId


class Telemetry(_Loose):
    body: Any = None  # JSON when the message's content type is application/json and UTF-8
    systemProperties: dict[str, Any] = Field(default_factory=dict)


def _telemetry(source_name: str, envelope: _Envelope, where: str) -> DeviceEvent:
    """A device's message routed to Event Grid: the device is named in its system properties, the
    hub in the topic (lower-cased: Azure resource names ignore case, Event Grid upper-cases topics)."""
    message = validate(Telemetry, envelope.data, f"{TELEMETRY} {where} data")
    system = message.systemProperties
    hub = (envelope.topic or "").rstrip("/").rsplit("/", 1)[-1].lower()
    ids = validate(
        TelemetryDevice,
        {"hub": hub, "device": system.get("iothub-connection-device-id")},
        f"{TELEMETRY} {where} (hub in the topic, data.systemProperties.iothub-connection-device-id)",
    )
    if envelope.subject and envelope.subject != f"devices/{ids.device}":
        raise bad_request(f"{where}: its subject {envelope.subject!r} names another device than its message")
    # The device's own time when its SDK set one; else when the hub enqueued the message.
    measured = (
        iso_instant(system.get("iothub-creation-time-utc"))
        or iso_instant(system.get("iothub-enqueuedtime"))
        or iso_instant(envelope.time)
    )
    return DeviceEvent(
        source=source_name,
        platform=PLATFORM,
        device_id=f"{ids.hub}/{ids.device}",
        event_id=f"eventgrid:{envelope.id}",
        name=ids.device,
        occurred_at=iso_instant(envelope.time),
        partial=True,  # telemetry names the device, nothing else about it
        reading=flatten(_json_body(message.body), measured, f"eventgrid:{envelope.id}"),
    )


def _json_body(body: Any) -> Any:
    """The telemetry body: JSON as routed, or base64 of JSON when the device set no content type."""
    if not isinstance(body, str):
        return body
    try:
        return json.loads(base64.b64decode(body, validate=True))
    except (ValueError, RecursionError):
        return None


ADAPTER = AzureEventGrid()
