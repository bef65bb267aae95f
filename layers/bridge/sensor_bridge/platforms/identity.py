"""Identity at the platform edge: ids a platform could not have sent are refused (400, naming the
field), and display text is cleaned before it can become a device's NAME or NOTES.

A device id becomes a registry key, a refId's hash input, NOTES text and a log field, so it is
checked against the platform's own rule for it rather than cleaned: two different ids must never
become one. Each adapter declares its id fields as `Annotated[str, identifier(...)]`;
`at_the_edge` cleans what the adapters pass on as text.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from sensor_bridge.model.device_event import DeviceEvent
from sensor_bridge.model.replies import bad_request
from sensor_bridge.model.text import MAX_NAME_LENGTH, clean_text, is_clean

MAX_ID_LENGTH = 256  # a registry key holds the source and the id in DynamoDB's 2048 bytes
MAX_TAGS = 64  # tags and attributes per device: profile matching reads a handful


def identifier(pattern: str, rule: str) -> AfterValidator:
    """The check for an id field, `Annotated[str, identifier(...)]`: the value must match
    `pattern` entirely; `rule` says how, in the 400 answer."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise PydanticCustomError("identifier", "must be {rule}", {"rule": rule})
        return value

    return AfterValidator(check)


# A LoRaWAN DevEUI or JoinEUI (and any EUI-64): 16 hex digits.
Eui64 = Annotated[str, identifier(r"[0-9A-Fa-f]{16}", "16 hex digits (an EUI-64)")]
# A platform's delivery id, used for idempotency: visible ASCII, no spaces.
_EVENT_ID, _EVENT_ID_RULE = r"[\x21-\x7e]{1,128}", "1-128 visible ASCII characters"
EventId = Annotated[str, identifier(_EVENT_ID, _EVENT_ID_RULE)]


def checked_event_id(value: str | None, field: str) -> str | None:
    """An event id read outside a pydantic model (a header): EventId's rule, 400 otherwise."""
    if value is not None and not re.fullmatch(_EVENT_ID, value):
        raise bad_request(f"{field}: must be {_EVENT_ID_RULE}")
    return value


def at_the_edge(event: DeviceEvent) -> DeviceEvent:
    """The event with its display text cleaned and bounded; 400 if its id is not printable text
    (every adapter's rule is stricter, so this only holds the line for the next adapter)."""
    if not event.device_id or len(event.device_id) > MAX_ID_LENGTH or not is_clean(event.device_id):
        raise bad_request(f"device id: must be 1-{MAX_ID_LENGTH} printable characters")
    return dataclasses.replace(
        event,
        name=clean_text(event.name, MAX_NAME_LENGTH),
        model=clean_text(event.model),
        profile_name=clean_text(event.profile_name),
        tags=_clean_pairs(event.tags),
        attributes=_clean_pairs(event.attributes),
    )


def _clean_pairs(pairs: dict[str, str]) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    for key, value in list(pairs.items())[:MAX_TAGS]:
        name, text = clean_text(key), clean_text(value)
        if name is not None and text is not None:
            cleaned[name] = text
    return cleaned
