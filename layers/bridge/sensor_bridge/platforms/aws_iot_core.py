"""AWS IoT Core registry events, forwarded by an IoT rule's HTTP action.

A rule such as `SELECT * FROM '$aws/events/thing/+/+'` sends each registry event as is:
`{eventType: THING_EVENT, eventId, operation: CREATED|UPDATED|DELETED, thingName, thingId,
thingTypeName, attributes, timestamp}`. Before any traffic flows, AWS IoT confirms the rule's
destination: a POST with `x-amz-rules-engine-message-type: DestinationConfirmation` and
`{arn, confirmationToken, enableUrl, messageType}`; GETting `enableUrl` enables it.

Readings come from a second rule on the devices' telemetry topic, which adds what the bridge needs
to the device's message: `SELECT *, 'TELEMETRY' AS eventType, topic(2) AS thingName,
traceid() AS eventId, timestamp() AS timestamp FROM 'things/+/telemetry'`; every other field of
the body is the reading.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from sensor_bridge.model.config import Source
from sensor_bridge.model.device_event import DeviceEvent, Lifecycle, Location
from sensor_bridge.model.readings import flatten
from sensor_bridge.model.replies import HttpReply, RequestError, bad_request
from sensor_bridge.model.request import WebhookRequest
from sensor_bridge.platforms.base import ParseResult, epoch_instant, json_body, location, validate
from sensor_bridge.platforms.identity import EventId, identifier
from sensor_bridge.runtime.budget import call_seconds
from sensor_bridge.runtime.http import request_within
from sensor_bridge.runtime.observability import logger
from sensor_bridge.runtime.settings import settings

MESSAGE_TYPE_HEADER = "x-amz-rules-engine-message-type"
CONFIRMATION = "DestinationConfirmation"
TELEMETRY = "TELEMETRY"
TELEMETRY_KEYS = ("eventType", "eventId", "thingName", "timestamp")  # the rule's, not the device's
OPERATIONS = {"CREATED": Lifecycle.APPEARED, "UPDATED": Lifecycle.CHANGED, "DELETED": Lifecycle.REMOVED}
# AWS IoT's own control-plane hosts (commercial and China partitions: iot.<region>.amazonaws.com
# and .com.cn) and exactly the path /confirmdestination/<token>, the token base64url-like: no dot,
# slash or percent sign, so no dot segment, encoded separator or query points the GET elsewhere.
_ENABLE_URL = re.compile(
    r"https://iot\.[a-z]{2}(?:-[a-z]+)+-\d{1,2}\.amazonaws\.com(?:\.cn)?/confirmdestination/[A-Za-z0-9_=+-]{1,2048}"
)
# AWS IoT's naming rule for thing and thing type names.
ThingName = Annotated[str, identifier(r"[a-zA-Z0-9:_-]{1,128}", "1-128 letters, digits and : _ -")]


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DestinationConfirmation(_Loose):
    arn: str
    confirmationToken: str = Field(min_length=1)
    enableUrl: str
    messageType: str


class ThingEvent(_Loose):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    eventType: str
    eventId: EventId | None = None
    operation: str | None = None
    thingName: ThingName | None = None
    thingId: str | None = None
    thingTypeName: ThingName | None = None
    attributes: dict[str, str] | None = None
    timestamp: Any = None  # epoch milliseconds; read leniently, never a reason to refuse the event


def checked_enable_url(value: str) -> str:
    """`value` if it is exactly `https://iot.<region>.amazonaws.com/confirmdestination/<token>`;
    else 400.

    The URL comes from an unauthenticated request, so the bridge must never fetch anything else.
    It is matched whole, as text, rather than parsed: no userinfo, port, query, fragment, dot
    segment, escape or odd character is left for a URL parser (or AWS's server) to read another way.
    """
    if not _ENABLE_URL.fullmatch(value):
        raise bad_request(
            "field enableUrl: must be https://iot.<region>.amazonaws.com/confirmdestination/<token>"
        )
    return value


class AwsIotCore:
    name = "aws-iot-core"
    # AWS sends the confirmation to the destination without the rule's headers, so it cannot
    # carry the source's secret; answering it only ever GETs a checked AWS IoT URL.
    handshake_before_auth = True

    def handshake(self, request: WebhookRequest, source_name: str, source: Source) -> HttpReply | None:
        if (request.header(MESSAGE_TYPE_HEADER) or "") != CONFIRMATION:
            return None
        if request.method != "POST":
            raise RequestError(405, "MethodNotAllowed", "use POST", headers={"Allow": "POST"})
        message = validate(DestinationConfirmation, json_body(request), "AWS IoT destination confirmation")
        if message.messageType != CONFIRMATION:
            raise bad_request(f"field messageType: expected {CONFIRMATION!r}")
        url = checked_enable_url(message.enableUrl)
        if not source.confirm_destinations:
            logger.warning(
                "destination confirmation left to an operator: open enableUrl or call "
                "ConfirmTopicRuleDestination with the token",
                extra={"destination_arn": message.arn, "enable_url": url},
            )
            return HttpReply(
                202,
                {
                    "status": "confirmation-pending",
                    "reason": "confirm_destinations is false for this source: an operator confirms it",
                },
            )
        return _confirm(url, message.arn)

    def parse(self, request: WebhookRequest, source_name: str, source: Source) -> ParseResult:
        body = json_body(request)
        if isinstance(body, dict) and body.get("eventType") == TELEMETRY:
            if not source.readings:
                return ParseResult.ignore("readings are switched off for this source")
            return ParseResult([self._telemetry(source_name, body)])
        message = validate(ThingEvent, body, "AWS IoT registry event")
        if message.eventType != "THING_EVENT":
            return ParseResult.ignore(f"AWS IoT {message.eventType} events are not about a device")
        lifecycle = OPERATIONS.get(message.operation or "")
        if lifecycle is None:
            raise bad_request("AWS IoT registry event: field operation: expected CREATED, UPDATED or DELETED")
        if not message.thingName:
            raise bad_request("AWS IoT registry event: field thingName: required for THING_EVENT")
        attributes = dict(message.attributes or {})
        return ParseResult(
            [
                DeviceEvent(
                    source=source_name,
                    platform=self.name,
                    device_id=message.thingName,  # unique per account and region, as is the source
                    lifecycle=lifecycle,
                    announced=True,
                    event_id=f"aws-iot:{message.eventId}" if message.eventId else None,
                    name=message.thingName,
                    model=message.thingTypeName or None,
                    attributes=attributes,
                    location=_attribute_location(attributes),
                    occurred_at=epoch_instant(message.timestamp, milliseconds=True),
                )
            ]
        )

    def _telemetry(self, source_name: str, body: dict[str, Any]) -> DeviceEvent:
        meta = validate(TelemetryMeta, {k: body.get(k) for k in TELEMETRY_KEYS}, "AWS IoT telemetry")
        measured = epoch_instant(meta.timestamp, milliseconds=True)
        return DeviceEvent(
            source=source_name,
            platform=self.name,
            device_id=meta.thingName,
            event_id=f"aws-iot:{meta.eventId}",
            name=meta.thingName,
            occurred_at=measured,
            partial=True,  # a device's message says nothing about its thing type or attributes
            reading=flatten(
                {k: v for k, v in body.items() if k not in TELEMETRY_KEYS},
                measured,
                f"aws-iot:{meta.eventId}",
            ),
        )


class TelemetryMeta(_Loose):
    """What the telemetry rule's SELECT adds to the device's message."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    eventType: str
    thingName: str = Field(min_length=1)
    eventId: str = Field(min_length=1)  # traceid(): one per MQTT message, the same on a resend
    timestamp: Any = None  # timestamp(): epoch milliseconds when the rule ran


def _confirm(url: str, arn: str) -> HttpReply:
    try:
        # An outbound call like the others: it ends by the invocation's deadline.
        answer = request_within("GET", url, call_seconds(settings().api_timeout_seconds))
    except httpx.HTTPError as exc:
        logger.warning(
            "destination confirmation failed", extra={"destination_arn": arn, "why": type(exc).__name__}
        )
        raise RequestError(502, "ConfirmationFailed", "AWS IoT did not answer the confirmation GET") from None
    if not answer.is_success:
        logger.warning(
            "destination confirmation refused", extra={"destination_arn": arn, "status": answer.status_code}
        )
        raise RequestError(
            502, "ConfirmationFailed", f"AWS IoT answered the confirmation GET with {answer.status_code}"
        )
    logger.info("destination confirmed", extra={"destination_arn": arn})
    return HttpReply(200, {"status": "confirmed"})


def _attribute_location(attributes: dict[str, str]) -> Location | None:
    # Thing attributes are free-form strings; `latitude`/`longitude` (and `altitude`) by convention.
    if "latitude" not in attributes or "longitude" not in attributes:
        return None
    try:
        return location(attributes["latitude"], attributes["longitude"], attributes.get("altitude"))
    except ValueError:
        return None


ADAPTER = AwsIotCore()
