"""The Things Stack v3 webhooks: `join-accept` (every join) and `uplink-message`.

Field names follow the TTS v3 message format (`end_device_ids`, `join_accept`, `uplink_message`,
`version_ids`, `locations`). TTS gives no device name: the device id stands for it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from sensor_bridge.model.config import Source
from sensor_bridge.model.device_event import DeviceEvent, Lifecycle, Location
from sensor_bridge.model.readings import Reading, flatten
from sensor_bridge.model.request import WebhookRequest
from sensor_bridge.platforms.base import (
    ParseResult,
    WithoutHandshake,
    iso_instant,
    json_body,
    location,
    validate,
)
from sensor_bridge.platforms.identity import Eui64, EventId, identifier

# The Things Stack's own ID rule (application, device): 3-36 lower-case letters and digits,
# single dashes between them.
TtsId = Annotated[
    str, identifier(r"[a-z0-9](?:-?[a-z0-9]){2,35}", "3-36 lower-case letters, digits and single dashes")
]


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ApplicationIds(_Loose):
    application_id: TtsId


class EndDeviceIds(_Loose):
    device_id: TtsId
    application_ids: ApplicationIds
    dev_eui: Eui64 | None = None
    join_eui: Eui64 | None = None


class JoinAccept(_Loose):
    session_key_id: EventId | None = None


class VersionIds(_Loose):
    brand_id: str | None = None
    model_id: str | None = None
    hardware_version: str | None = None
    firmware_version: str | None = None
    band_id: str | None = None


class UplinkMessage(_Loose):
    version_ids: VersionIds | None = None
    # Keyed by where the location comes from: `user` (set in the device registry by a person),
    # `frm-payload`, `gps`, `lora-rss`, ... (computed, different on every uplink).
    locations: dict[str, Any] = Field(default_factory=dict)
    attributes: dict[str, str] = Field(default_factory=dict)
    decoded_payload: Any = None  # what the payload formatter decoded: the device's values
    received_at: Any = None  # when the network server received the uplink (RFC 3339, ns)


class TtsMessage(_Loose):
    end_device_ids: EndDeviceIds
    correlation_ids: list[str] = Field(default_factory=list)
    received_at: Any = None  # when the network server received the message (RFC 3339, ns)
    join_accept: JoinAccept | None = None
    uplink_message: UplinkMessage | None = None
    # TTS v3.34+ forwards the end device's attributes with its messages.
    attributes: dict[str, str] = Field(default_factory=dict)


class ThingsStack(WithoutHandshake):
    name = "the-things-stack"

    def parse(self, request: WebhookRequest, source_name: str, source: Source) -> ParseResult:
        message = validate(TtsMessage, json_body(request), "The Things Stack message")
        ids = message.end_device_ids
        if message.join_accept is not None:
            # One session key per join: a resent join-accept carries the same one.
            key = message.join_accept.session_key_id
            event_id = f"join:{ids.application_ids.application_id}:{ids.device_id}:{key}" if key else None
            return ParseResult([self._event(source_name, message, event_id)])
        if message.uplink_message is not None:
            # Uplinks are frequent: the registry, not an idempotency record, tells a known device
            # (its reading, when one is forwarded, carries the uplink's own id).
            event = self._event(source_name, message, None)
            reading = _reading(message.uplink_message, message) if source.readings else None
            return ParseResult([replace(event, reading=reading)])
        return ParseResult.ignore("only join-accept and uplink-message announce a device")

    def _event(self, source_name: str, message: TtsMessage, event_id: str | None) -> DeviceEvent:
        ids = message.end_device_ids
        uplink = message.uplink_message
        version = uplink.version_ids if uplink else None
        model = None
        if version and version.model_id:
            model = f"{version.brand_id}/{version.model_id}" if version.brand_id else version.model_id
        attributes = {**message.attributes, **(uplink.attributes if uplink else {})}
        return DeviceEvent(
            source=source_name,
            platform=self.name,
            # The application scopes the device id in TTS; the pair is the device's identity.
            device_id=f"{ids.application_ids.application_id}/{ids.device_id}",
            lifecycle=Lifecycle.APPEARED,
            event_id=event_id,
            name=ids.device_id,
            model=model,
            attributes=attributes,
            location=_user_location(uplink),
            occurred_at=iso_instant(message.received_at),
            partial=True,  # joins carry no model or location; uplinks only what is set
        )


def _reading(uplink: UplinkMessage, message: TtsMessage) -> Reading | None:
    measured = iso_instant(uplink.received_at) or iso_instant(message.received_at)
    return flatten(uplink.decoded_payload, measured, _uplink_id(message))


def _uplink_id(message: TtsMessage) -> str | None:
    ids = message.end_device_ids
    device = f"{ids.application_ids.application_id}/{ids.device_id}"
    for correlation in message.correlation_ids:
        if correlation.startswith("as:up:"):  # the application server's id of this uplink
            return f"tts:{device}:{correlation}"
    if message.received_at is None:
        return None
    return f"tts:{device}:up:{message.received_at}"


def _user_location(uplink: UplinkMessage | None) -> Location | None:
    """The location a person set in the device registry, if any. Computed locations (decoded from
    the payload, GPS, LoRa triangulation) move a little with every uplink: taking them would turn
    each uplink into an `update` of the device."""
    user = uplink.locations.get("user") if uplink else None
    if not isinstance(user, dict):
        return None
    try:
        return location(user.get("latitude"), user.get("longitude"), user.get("altitude"))
    except (TypeError, ValueError):
        return None  # a location we cannot read is left out, not a reason to refuse the uplink


ADAPTER = ThingsStack()
