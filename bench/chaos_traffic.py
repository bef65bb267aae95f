"""The chaos benchmark's webhooks: device announcements on all six platforms, built from the
samples in events/ with a device and a delivery id of their own, then repeated (the same delivery
sent again, as platforms do at least once), announced again (a rejoin: a new delivery for the same
device) and shuffled (reordering).

Each platform's builder writes the device's id into every place the sample names it (ids that
disagree inside one event are refused) and returns the device id the bridge derives from it.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

from local.stack import signed_now
from tests.conftest import load_event

Body = Any
# (body, device number, delivery token) -> the bridge's device id
Writer = Callable[[Body, int, str], str]


def _tts(body: Body, n: int, token: str) -> str:
    ids = body["end_device_ids"]
    ids["device_id"] = f"chaos-{n:05d}"
    ids["dev_eui"] = f"70B3D57EDC{n:06X}"
    body["join_accept"]["session_key_id"] = f"chaos{token}=="  # TTS: one event per join session
    return f"{ids['application_ids']['application_id']}/{ids['device_id']}"


def _tts_uplink(body: Body, n: int, token: str) -> str:
    ids = body["end_device_ids"]
    ids["device_id"] = f"chaos-{n:05d}"
    ids["dev_eui"] = f"70B3D57EDC{n:06X}"
    body["correlation_ids"] = [f"as:up:{token}"]  # TTS: one uplink, one id
    return f"{ids['application_ids']['application_id']}/{ids['device_id']}"


def _chirpstack(body: Body, n: int, token: str) -> str:
    info = body["deviceInfo"]
    info["deviceName"] = f"chaos-probe-{n:05d}"
    info["devEui"] = f"{0xC4A0500000000000 + n:016x}"
    body["deduplicationId"] = token
    return str(info["devEui"])


def _particle(body: Body, n: int, _token: str) -> str:
    # The form-encoded spark/status event carries no event id: each delivery is processed.
    body["coreid"] = f"e00fce68c4a05{n:011x}"
    return str(body["coreid"])


def _azure_event(event: Body, n: int, token: str) -> str:
    device = f"chaos-hub-device-{n:05d}"
    event["id"] = token
    event["subject"] = f"devices/{device}"
    event["data"]["deviceId"] = device
    event["data"]["twin"]["deviceId"] = device
    return f"{event['data']['hubName']}/{device}"


def _azure_grid(body: Body, n: int, token: str) -> str:
    return _azure_event(body[0], n, token)


def _aws_iot(body: Body, n: int, token: str) -> str:
    body["thingName"] = f"chaos-thing-{n:05d}"
    body["thingId"] = f"chaos-thing-id-{n}"
    body["eventId"] = token
    return str(body["thingName"])


def _generic(body: Body, n: int, _token: str) -> str:
    body["data"]["device"]["id"] = f"chaos-th-{n:05d}"  # the delivery id is the webhook-id header
    return str(body["data"]["device"]["id"])


@dataclass(frozen=True)
class Announcement:
    """A sample that announces a device, and how to give it another device and delivery."""

    event: str
    write: Writer
    form: bool = False
    # A later deletion of the same device, by the platform's own event time (the bridge orders
    # creations and deletions by it, whatever order they arrive in).
    deletion: tuple[str, Writer] | None = None  # its sample and writer


AZURE_DELETION = ("azure-05-device-deleted-not-ours.json", _azure_grid)
ANNOUNCEMENTS = [
    Announcement("ttn-01-join-accept.json", _tts),
    Announcement("chirpstack-01-join.json", _chirpstack),
    Announcement("particle-01-online-form.json", _particle, form=True),
    Announcement("azure-02-device-created.json", _azure_grid, deletion=AZURE_DELETION),
    Announcement(
        "azure-04-cloudevents-device-created.json",
        _azure_event,
        deletion=AZURE_DELETION,
    ),
    Announcement(
        "aws-iot-02-thing-created.json", _aws_iot, deletion=("aws-iot-03-thing-deleted.json", _aws_iot)
    ),
    Announcement("generic-01-device-created.json", _generic),
]


@dataclass
class Delivery:
    """One webhook as its platform sends it (again, byte for byte, after a 5xx or no answer)."""

    number: int
    # "first", "duplicate" (the same delivery again), "rejoin" (a new one, same device) or
    # "delete" (the platform deleted the device, after every announcement of it)
    kind: str
    sample: str
    source: str
    device: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    answers: list[int | str] = field(default_factory=list)  # each send's status, or "killed"
    answer: Any = None  # the last answer's body
    # Each send as "<AWS phase>: <status> [<error code>]": which faults a never-accepted one met.
    sends: list[str] = field(default_factory=list)
    removes: bool = False  # a deletion (or a deletion sent again)
    reading: str | None = None  # an uplink's own id: it carries a reading

    def again(self, number: int) -> Delivery:
        return replace(self, number=number, kind="duplicate", answers=[], answer=None, sends=[])

    def signed(self) -> dict[str, str]:
        """The headers as sent now: a Standard Webhooks sender signs each attempt as it sends it."""
        return signed_now(self.headers, self.body, self.source)


def announce(
    kind: Announcement, device: int, token: str, number: int, *, sample: str | None = None
) -> Delivery:
    event = load_event(sample or kind.event)
    raw = event.get("body") or ""
    body = dict(parse_qsl(raw)) if kind.form else json.loads(raw)
    body = copy.deepcopy(body)
    device_id = kind.write(body, device, token)
    content = urlencode(body).encode() if kind.form else json.dumps(body).encode()
    headers = dict(event["headers"])
    if "webhook-id" in headers:
        headers["webhook-id"] = f"msg_{token}"
    query = event.get("rawQueryString") or ""
    return Delivery(
        number=number,
        kind="first",
        sample=kind.event,
        source=event["pathParameters"]["source"],
        device=device_id,
        method=event["requestContext"]["http"]["method"],
        path=event["rawPath"] + (f"?{query}" if query else ""),
        headers=headers,
        body=content,
    )


DUPLICATES, REJOINS, DELETIONS, UPLINKS = 0.2, 0.08, 0.05, 0.05  # shares of the webhooks
# A The Things Stack uplink with a reading, and the model and location a join does not say: the
# device is updated (whichever arrives first) and the reading uploaded.
UPLINK = Announcement("ttn-08-uplink-known-device.json", _tts_uplink)


def traffic(webhooks: int, rng: random.Random) -> list[Delivery]:
    """`webhooks` deliveries, shuffled: one announcement per device, round-robin over the
    platforms, deletions of some (AWS IoT and Azure: platforms that date their events), and
    exact duplicates and rejoins of earlier deliveries."""
    devices = max(1, round(webhooks * (1 - DUPLICATES - REJOINS - DELETIONS - UPLINKS)))
    firsts = [
        announce(ANNOUNCEMENTS[n % len(ANNOUNCEMENTS)], n, f"{rng.getrandbits(64):016x}", n)
        for n in range(devices)
    ]
    deletable = [n for n in range(devices) if ANNOUNCEMENTS[n % len(ANNOUNCEMENTS)].deletion]
    chosen = rng.sample(deletable, min(len(deletable), round(webhooks * DELETIONS)))
    deletions = [_deletion(n, rng, devices + i) for i, n in enumerate(chosen)]
    tts = list(range(0, devices, len(ANNOUNCEMENTS)))  # ANNOUNCEMENTS[0]'s devices
    chosen = rng.sample(tts, min(len(tts), round(webhooks * UPLINKS)))
    uplinks = [_uplink(n, rng, devices + len(deletions) + i) for i, n in enumerate(chosen)]
    deliveries = firsts + deletions + uplinks
    while len(deliveries) < webhooks:
        n = rng.randrange(devices)
        if deletions and rng.random() < DELETIONS:  # a deletion sent again
            deliveries.append(rng.choice(deletions).again(len(deliveries)))
        elif uplinks and rng.random() < UPLINKS:  # an uplink sent again
            deliveries.append(rng.choice(uplinks).again(len(deliveries)))
        elif rng.random() < DUPLICATES / (DUPLICATES + REJOINS):
            deliveries.append(firsts[n].again(len(deliveries)))
        else:
            kind = ANNOUNCEMENTS[n % len(ANNOUNCEMENTS)]
            rejoin = announce(kind, n, f"{rng.getrandbits(64):016x}", len(deliveries))
            rejoin.kind = "rejoin"
            deliveries.append(rejoin)
    rng.shuffle(deliveries)
    return deliveries


def _deletion(device: int, rng: random.Random, number: int) -> Delivery:
    later = ANNOUNCEMENTS[device % len(ANNOUNCEMENTS)].deletion
    assert later is not None
    deletion = announce(Announcement(*later), device, f"{rng.getrandbits(64):016x}", number)
    deletion.kind, deletion.removes = "delete", True
    return deletion


def _uplink(device: int, rng: random.Random, number: int) -> Delivery:
    token = f"{rng.getrandbits(64):016x}"
    uplink = announce(UPLINK, device, token, number)
    uplink.kind, uplink.reading = "uplink", token
    return uplink
