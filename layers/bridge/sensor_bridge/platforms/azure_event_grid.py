"""Azure IoT Hub device lifecycle events, delivered by an Event Grid webhook subscription.

Two delivery schemas, chosen per subscription:
- Event Grid schema: a JSON array of `{id, topic, subject, eventType, eventTime, data}`; the
  subscription is validated by a `Microsoft.EventGrid.SubscriptionValidationEvent` answered with
  `{"validationResponse": data.validationCode}`.
- CloudEvents 1.0: `{specversion, type, source, id, time, subject, data}`, one event or a batch
  (array); the endpoint is validated by an `OPTIONS` request carrying `WebHook-Request-Origin`,
  answered with `WebHook-Allowed-Origin` (and `WebHook-Allowed-Rate`).
`Microsoft.Devices.DeviceCreated` announces a device (with its twin), `DeviceDeleted` removes it;
connection and telemetry events are ignored.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sensor_bridge.model.config import Source
from sensor_bridge.model.device_event import DeviceEvent, Lifecycle, Location
from sensor_bridge.model.replies import HttpReply, bad_request
from sensor_bridge.model.request import WebhookRequest
from sensor_bridge.platforms.base import ParseResult, iso_instant, json_body, location, validate

VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
LIFECYCLE = {
    "Microsoft.Devices.DeviceCreated": Lifecycle.APPEARED,
    "Microsoft.Devices.DeviceDeleted": Lifecycle.REMOVED,
}


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class EventGridEvent(_Loose):
    id: str
    eventType: str
    subject: str = ""
    eventTime: Any = None  # read leniently: a timestamp we cannot read is left out, not refused
    topic: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class CloudEvent(_Loose):
    specversion: str
    type: str
    source: str
    id: str
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
    deviceId: str | None = None
    modelId: str | None = None  # IoT Plug and Play model, when the device announces one
    tags: dict[str, Any] = Field(default_factory=dict)
    properties: TwinProperties = Field(default_factory=TwinProperties)


class DeviceLifecycleData(_Loose):
    hubName: str
    deviceId: str = Field(min_length=1)
    twin: Twin | None = None


class AzureEventGrid:
    name = "azure-iot-hub"
    handshake_before_auth = False

    def handshake(self, request: WebhookRequest, source_name: str, source: Source) -> HttpReply | None:
        if request.method == "OPTIONS":
            origin = request.header("webhook-request-origin")
            if not origin:
                raise bad_request("header WebHook-Request-Origin is required for the CloudEvents validation")
            # Allow the origin that asked; the rate is unlimited because the bridge queues on 429.
            return HttpReply(200, None, {"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"})
        body = json_body(request)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], dict)
            and body[0].get("eventType") == VALIDATION
        ):
            event = validate(EventGridEvent, body[0], "Event Grid subscription validation")
            data = validate(ValidationData, event.data, "Event Grid subscription validation data")
            return HttpReply(200, {"validationResponse": data.validationCode})
        return None

    def parse(self, request: WebhookRequest, source_name: str, source: Source) -> ParseResult:
        body = json_body(request)
        items = body if isinstance(body, list) else [body]
        events: list[DeviceEvent] = []
        skipped: set[str] = set()
        for index, item in enumerate(items):
            where = f"event [{index}]"
            if isinstance(item, dict) and "specversion" in item:
                cloud = validate(CloudEvent, item, f"CloudEvent {where}")
                kind, event_id, data, when = cloud.type, cloud.id, cloud.data, cloud.time
            else:
                grid = validate(EventGridEvent, item, f"Event Grid {where}")
                kind, event_id, data, when = grid.eventType, grid.id, grid.data, grid.eventTime
            lifecycle = LIFECYCLE.get(kind)
            if lifecycle is None:
                skipped.add(kind)
                continue
            device = validate(DeviceLifecycleData, data, f"{kind} {where} data")
            events.append(self._event(source_name, device, lifecycle, event_id, iso_instant(when)))
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
            location=_twin_location(twin),
            occurred_at=occurred_at,
        )


def _twin_location(twin: Twin) -> Location | None:
    """A `location` object in the twin's tags, reported or desired properties (in that order),
    with `latitude`/`longitude` (or `lat`/`lon`) and optional `altitude`."""
    for holder in (twin.tags, twin.properties.reported, twin.properties.desired):
        found = holder.get("location")
        if not isinstance(found, dict):
            continue
        try:
            return location(
                found.get("latitude", found.get("lat")),
                found.get("longitude", found.get("lon")),
                found.get("altitude", found.get("alt")),
            )
        except (TypeError, ValueError):
            continue  # a twin is free-form: a location we cannot read is left out, not refused
    return None


ADAPTER = AzureEventGrid()
