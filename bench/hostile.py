"""Hypothesis strategies for hostile webhooks: every platform's sample from events/, changed the
way an attacker or a broken sender would change it.

A drawn `Attempt` is one HTTP request (method, path, headers, query, body) plus what it tried.
Credentials are right unless the attempt is about them, so that most requests get past
authentication and exercise the parsers, the identity rules and the delivery behind them.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from hypothesis import strategies as st

from local.provision import LOCAL_WEBHOOK_SECRETS
from tests.conftest import load_event

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Sample:
    """A webhook from events/, and where its ids and its display text are."""

    event: str
    ids: tuple[Path, ...] = ()
    names: tuple[Path, ...] = ()
    form: bool = False  # Particle's default form-encoded body
    # Where the platform's delivery id is: a fresh one per attempt, so that the bridge processes
    # it instead of answering a redelivery from its idempotency record without any call.
    event_id: Path | None = None


SAMPLES = [
    Sample(
        "ttn-01-join-accept.json",
        ids=(
            ("end_device_ids", "device_id"),
            ("end_device_ids", "application_ids", "application_id"),
            ("end_device_ids", "dev_eui"),
            ("join_accept", "session_key_id"),
        ),
        event_id=("join_accept", "session_key_id"),
    ),
    Sample(
        "ttn-06-uplink-new-device.json",
        ids=(("end_device_ids", "device_id"),),
        names=(("uplink_message", "version_ids", "model_id"), ("uplink_message", "version_ids", "brand_id")),
    ),
    Sample(
        "chirpstack-01-join.json",
        ids=(("deviceInfo", "devEui"), ("deduplicationId",)),
        names=(
            ("deviceInfo", "deviceName"),
            ("deviceInfo", "deviceProfileName"),
            ("deviceInfo", "tags", "site"),
        ),
        event_id=("deduplicationId",),
    ),
    Sample("particle-01-online-form.json", ids=(("coreid",),), form=True),
    Sample(
        "particle-02-json-template.json",
        ids=(("coreid",), ("PARTICLE_EVENT_ID",), ("PRODUCT_ID",)),
        event_id=("PARTICLE_EVENT_ID",),
    ),
    Sample("azure-01-subscription-validation.json", ids=((0, "data", "validationCode"), (0, "eventType"))),
    Sample(
        "azure-02-device-created.json",
        ids=((0, "id"), (0, "data", "deviceId"), (0, "data", "hubName"), (0, "topic"), (0, "subject")),
        names=((0, "data", "twin", "modelId"), (0, "data", "twin", "tags", "sensor")),
        event_id=(0, "id"),
    ),
    Sample("azure-03-cloudevents-validation.json"),
    Sample(
        "azure-04-cloudevents-device-created.json",
        ids=(("id",), ("data", "deviceId"), ("source",), ("subject",)),
        names=(("data", "twin", "tags", "building"),),
        event_id=("id",),
    ),
    Sample("aws-iot-01-destination-confirmation.json", ids=(("enableUrl",), ("confirmationToken",))),
    Sample(
        "aws-iot-02-thing-created.json",
        ids=(("thingName",), ("eventId",), ("thingTypeName",)),
        names=(("attributes", "site"),),
        event_id=("eventId",),
    ),
    Sample(
        "generic-01-device-created.json",
        ids=(("data", "device", "id"),),
        names=(
            ("data", "device", "label"),
            ("data", "device", "hardware", "model"),
            ("data", "device", "labels", "site"),
        ),
    ),
]
# A source of the fuzz's own configuration: `auth: {type: none}` (every other type is in the
# shipped sources: header, basic, query, standard-webhooks).
OPEN_SOURCE = "fuzz-open"

# Characters that must never reach Sensor Data as they are.
INVISIBLE = (
    "\x00\x01\x07\x08\t\n\v\f\r\x1b\x7f\x80\x85\x9b\x9f"
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    "\u2028\u2029\u2060\ufeff\ufff9\U000e0001\ud800\udbff\udc00\udfff\ue000\uffff"
)
HOSTILE_CHAR = st.sampled_from(INVISIBLE)
ANY_CHAR = st.characters() | st.characters(categories=["Cs"]) | HOSTILE_CHAR
HOSTILE_TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=48),
    st.text(HOSTILE_CHAR, min_size=1, max_size=8),
    st.builds(lambda unit, n: unit * n, st.text(ANY_CHAR, min_size=1, max_size=3), st.integers(100, 6000)),
)
JSON_SCALAR = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | HOSTILE_TEXT
ANY_JSON = st.recursive(
    JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(HOSTILE_TEXT, inner, max_size=4),
    max_leaves=20,
)
ENABLE_URLS = st.sampled_from(
    [
        "https://iot.eu-west-1.amazonaws.com/confirmdestination/../../things?thingName=x",
        "https://iot.eu-west-1.amazonaws.com/confirmdestination/%2e%2e/things",
        "https://iot.eu-west-1.amazonaws.com/confirmdestination/tok?next=/x",
        "https://iot.eu-west-1.amazonaws.com@evil.example/confirmdestination/tok",
        "https://iot.eu-west-1.amazonaws.com\\@evil.example/confirmdestination/tok",
        "https://169.254.169.254/latest/meta-data/",
        "http://iot.eu-west-1.amazonaws.com/confirmdestination/tok",
        "https://iot.eu-west-1.amazonaws.com/confirmdestination/tok\r\nHost: evil",
    ]
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-16",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/octet-stream",
        "application/cloudevents+json",
        "",
        "application/json\u202e",
    ]
)
# Header values HTTP can carry: no CR, LF or NUL, but anything else a client may send.
HEADER_TEXT = st.text(st.characters(exclude_characters="\r\n\x00", exclude_categories=["Cs"]), max_size=80)


@dataclass
class Attempt:
    sample: Sample
    kind: str
    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes
    declared_route: bool = True
    notes: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "sample": self.sample.event,
            "kind": self.kind,
            "method": self.method,
            "path": self.path[:120],
            "query": {k[:40]: v[:40] for k, v in self.query.items()},
            "headers": {k: v[:80] for k, v in self.headers.items()},
            "body": self.body[:300].decode("utf-8", "backslashreplace"),
            "notes": self.notes,
        }


def set_at(body: Any, path: Path, value: Any) -> bool:
    """Put `value` at `path` inside `body`; False if the path is not there."""
    holder = body
    for key in path[:-1]:
        try:
            holder = holder[key]
        except (KeyError, IndexError, TypeError):
            return False
    last = path[-1]
    if isinstance(holder, dict):
        holder[last] = value
        return True
    if isinstance(holder, list) and isinstance(last, int) and last < len(holder):
        holder[last] = value
        return True
    return False


def encode(value: Any, sample: Sample, ascii_only: bool) -> bytes:
    """The body as a sender would write it. Lone surrogates go out as `\\ud800` escapes, or (not
    ascii_only) as the bytes a careless encoder writes, which are not UTF-8."""
    if sample.form and isinstance(value, dict):
        return urlencode({str(k): str(v) for k, v in value.items()}, errors="surrogatepass").encode()
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def base_request(sample: Sample, source_override: str | None = None) -> Attempt:
    event = load_event(sample.event)
    raw = event.get("body") or ""
    path = event["rawPath"] if source_override is None else f"/webhooks/{source_override}"
    return Attempt(
        sample=sample,
        kind="sample",
        method=event["requestContext"]["http"]["method"],
        path=path,
        headers=dict(event["headers"]),
        query=dict(event.get("queryStringParameters") or {}),
        body=raw.encode("utf-8"),
    )


def body_value(sample: Sample) -> Any:
    raw = load_event(sample.event).get("body") or ""
    if sample.form:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(raw))
    return json.loads(raw) if raw else None


def sign(attempt: Attempt) -> None:
    """A Standard Webhooks signature over the body as it is (any bytes), with the demo secret."""
    import base64

    if "webhook-signature" not in attempt.headers:
        return
    key = base64.b64decode(LOCAL_WEBHOOK_SECRETS["generic-demo"].removeprefix("whsec_"))
    msg_id = attempt.headers.get("webhook-id", "")
    stamp = str(int(time.time()))
    digest = hmac.new(
        key, f"{msg_id}.{stamp}.".encode("utf-8", "surrogatepass") + attempt.body, hashlib.sha256
    )
    attempt.headers["webhook-timestamp"] = stamp
    attempt.headers["webhook-signature"] = "v1," + base64.b64encode(digest.digest()).decode()


def fresh_copy(draw: st.DrawFn, sample: Sample) -> Any:
    """The sample's body with a delivery id of its own (before any mutation, which may replace it)."""
    value = copy.deepcopy(body_value(sample))
    if sample.event_id is not None:
        set_at(value, sample.event_id, draw(st.uuids()).hex)
    return value


# -- one strategy per kind of hostility ----------------------------------------------------------


def _with_body(draw: st.DrawFn, sample: Sample, value: Any, kind: str) -> Attempt:
    attempt = base_request(sample)
    attempt.kind = kind
    if "webhook-id" in attempt.headers:
        attempt.headers["webhook-id"] = f"msg_{draw(st.uuids()).hex}"
    attempt.body = encode(value, sample, ascii_only=draw(st.booleans()))
    sign(attempt)
    return attempt


def _hostile_id(draw: st.DrawFn, valid: Any) -> Any:
    """Hostile text, or the valid id with hostile characters slipped in (the subtle case)."""
    if isinstance(valid, str) and valid and draw(st.booleans()):
        at = draw(st.integers(0, len(valid)))
        return valid[:at] + draw(st.text(HOSTILE_CHAR, min_size=1, max_size=3)) + valid[at:]
    if draw(st.integers(0, 9)) == 0:
        return draw(ANY_JSON)  # not even a string
    return draw(ENABLE_URLS | HOSTILE_TEXT)


@st.composite
def hostile_ids(draw: st.DrawFn) -> Attempt:
    sample = draw(st.sampled_from([s for s in SAMPLES if s.ids]))
    value = fresh_copy(draw, sample)
    path = draw(st.sampled_from(sample.ids))
    valid = copy.deepcopy(value)
    for key in path:
        valid = valid[key]
    set_at(value, path, _hostile_id(draw, valid))
    return _with_body(draw, sample, value, "id")


@st.composite
def hostile_names(draw: st.DrawFn) -> Attempt:
    sample = draw(st.sampled_from([s for s in SAMPLES if s.names]))
    value = fresh_copy(draw, sample)
    for path in draw(st.lists(st.sampled_from(sample.names), min_size=1, max_size=3, unique=True)):
        set_at(value, path, draw(HOSTILE_TEXT))
    return _with_body(draw, sample, value, "name")


@st.composite
def hostile_bodies(draw: st.DrawFn) -> Attempt:
    """Any JSON at the top level, or a sample with one of its values swapped for any JSON."""
    sample = draw(st.sampled_from(SAMPLES))
    if draw(st.booleans()):
        return _with_body(draw, sample, draw(ANY_JSON), "top-level type")
    value = fresh_copy(draw, sample)
    paths = list(sample.ids + sample.names) or [()]
    path = draw(st.sampled_from(paths))
    if path:
        set_at(value, path[:-1] or path, draw(ANY_JSON))
    if isinstance(value, list | dict) and draw(st.booleans()):
        value = [value] if isinstance(value, dict) else (value[0] if value else None)
    return _with_body(draw, sample, value, "shape")


@st.composite
def hostile_encodings(draw: st.DrawFn) -> Attempt:
    sample = draw(st.sampled_from(SAMPLES))
    attempt = base_request(sample)
    attempt.kind = "encoding"
    body = attempt.body
    how = draw(st.sampled_from(["random", "invalid-utf8", "utf16", "bom", "truncated", "deep"]))
    if how == "random":
        body = draw(st.binary(max_size=600))
    elif how == "invalid-utf8" and body:
        at = draw(st.integers(0, len(body)))
        body = (
            body[:at]
            + draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80"]))
            + body[at:]
        )
    elif how == "utf16":
        body = body.decode().encode(draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32"])))
    elif how == "bom":
        body = b"\xef\xbb\xbf" + body
    elif how == "truncated":
        body = body[: draw(st.integers(0, max(0, len(body) - 1)))]
    else:
        depth = draw(st.integers(1, 3000))
        body = draw(st.sampled_from([b"[", b'{"a":'])) * depth + draw(
            st.sampled_from([b"", b"1" + b"]" * depth])
        )
    attempt.body = body
    attempt.notes.append(how)
    sign(attempt)
    return attempt


@st.composite
def hostile_sizes(draw: st.DrawFn) -> Attempt:
    sample = draw(st.sampled_from([s for s in SAMPLES if not s.form]))
    value = fresh_copy(draw, sample)
    size = draw(st.sampled_from([256 * 1024 - 200, 256 * 1024 + 1, 300_000, 1_000_000])) + draw(
        st.integers(-50, 50)
    )
    pad = draw(st.sampled_from(["x", "\u00e9", "\u202e", "\\"]))
    holder = value[0] if isinstance(value, list) and value else value
    if isinstance(holder, dict):
        holder["padding"] = pad * max(0, size // len(pad.encode()))
    attempt = _with_body(draw, sample, value, "size")
    attempt.notes.append(f"{len(attempt.body)} bytes")
    return attempt


@st.composite
def hostile_headers(draw: st.DrawFn) -> Attempt:
    """Content types, handshake headers and credentials a platform would not send."""
    sample = draw(st.sampled_from(SAMPLES))
    attempt = base_request(sample)
    attempt.kind = "headers"
    changes = draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "content-type",
                    "aeg-event-type",
                    "x-amz-rules-engine-message-type",
                    "webhook-request-origin",
                    "x-bridge-token",
                    "authorization",
                    "webhook-id",
                    "webhook-timestamp",
                    "content-length",
                ]
            ),
            CONTENT_TYPES
            | HEADER_TEXT
            | st.sampled_from(["SubscriptionValidation", "Notification", "DestinationConfirmation"]),
            min_size=1,
            max_size=3,
        )
    )
    attempt.headers.update(changes)
    for name in draw(st.lists(st.sampled_from(sorted(attempt.headers)), max_size=2)):
        attempt.headers.pop(name, None)
    if draw(st.booleans()):
        sign(attempt)  # a right signature over wrong headers, or none at all
    return attempt


@st.composite
def hostile_queries(draw: st.DrawFn) -> Attempt:
    sample = draw(st.sampled_from(SAMPLES))
    attempt = base_request(sample)
    attempt.kind = "query"
    attempt.query.update(
        draw(st.dictionaries(st.sampled_from(["event", "code", "x", "event\u202e"]), HEADER_TEXT, max_size=3))
    )
    if draw(st.booleans()) and attempt.query:
        attempt.query.pop(draw(st.sampled_from(sorted(attempt.query))))
    sign(attempt)
    return attempt


@st.composite
def hostile_signatures(draw: st.DrawFn) -> Attempt:
    sample = next(s for s in SAMPLES if s.event.startswith("generic"))
    attempt = base_request(sample)
    attempt.kind = "signature"
    sign(attempt)
    how = draw(st.sampled_from(["garbage", "stale", "future", "other-body", "many", "missing", "id"]))
    if how == "garbage":
        attempt.headers["webhook-signature"] = draw(HEADER_TEXT)
    elif how in ("stale", "future"):
        attempt.headers["webhook-timestamp"] = str(
            int(time.time()) + (-1 if how == "stale" else 1) * draw(st.integers(301, 10**9))
        )
    elif how == "other-body":
        attempt.body += b" "
    elif how == "many":
        attempt.headers["webhook-signature"] = " ".join(
            ["v1," + draw(HEADER_TEXT)] * draw(st.integers(2, 50))
        )
    elif how == "missing":
        attempt.headers.pop(draw(st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"])))
    else:
        attempt.headers["webhook-id"] = draw(HEADER_TEXT)
        sign(attempt)
    attempt.notes.append(how)
    return attempt


@st.composite
def hostile_routes(draw: st.DrawFn) -> Attempt:
    sample = draw(st.sampled_from(SAMPLES))
    attempt = base_request(sample)
    attempt.kind = "route"
    attempt.method = draw(st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "HEAD", "POST", "OPTIONS"]))
    source = draw(
        st.sampled_from(["ttn-demo", "no-such-source", "TTN-DEMO", "a" * 300])
        | HEADER_TEXT.map(lambda t: t.replace("/", ""))
    )
    attempt.path = draw(
        st.sampled_from([f"/webhooks/{source}", f"/{source}", f"/webhooks/{source}/x", "/", "/webhooks"])
    )
    # template.yaml declares POST and OPTIONS /webhooks/{source}; API Gateway answers the rest.
    attempt.declared_route = attempt.method in ("POST", "OPTIONS") and bool(
        re.fullmatch(r"/webhooks/[^/]+", attempt.path)
    )
    sign(attempt)
    return attempt


@st.composite
def unauthenticated_source(draw: st.DrawFn) -> Attempt:
    """The `auth: {type: none}` source, fed The Things Stack's hostile ids and bodies."""
    sample = next(s for s in SAMPLES if s.event == "ttn-01-join-accept.json")
    attempt = base_request(sample, OPEN_SOURCE)
    value = fresh_copy(draw, sample)
    set_at(value, draw(st.sampled_from(sample.ids)), _hostile_id(draw, "strain-gauge-01"))
    attempt.kind = "auth none"
    attempt.body = encode(value, sample, ascii_only=draw(st.booleans()))
    attempt.headers.pop("x-bridge-token", None)
    return attempt


HOSTILE_REQUESTS = st.one_of(
    hostile_ids(),
    hostile_names(),
    hostile_bodies(),
    hostile_encodings(),
    hostile_sizes(),
    hostile_headers(),
    hostile_queries(),
    hostile_signatures(),
    hostile_routes(),
    unauthenticated_source(),
)
