"""A unit of work: one device event and what happened to it so far. It travels on the queues."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sensor_bridge.model.device_event import DeviceEvent
from sensor_bridge.runtime import clock

WORK_VERSION = 1
# A reason (an API's error message, a parking cause) is cut to this many characters before it
# goes into a work item: the message's size must stay within what the webhook checked before it
# answered 2xx (`retry.queue.check_queueable` reserves room for two reasons this long).
MAX_REASON_CHARS = 500
# Characters SQS refuses in a message body (it allows #x9 #xA #xD, #x20-#xD7FF, #xE000-#xFFFD,
# #x10000-#x10FFFF); json.dumps already escapes the C0 controls. Only inside JSON strings, so
# escaping them as \uXXXX keeps the JSON's meaning.
_SQS_REFUSED = re.compile("[\ud800-\udfff\ufffe\uffff]")


def bounded_reason(reason: str | None) -> str | None:
    """`reason`, cut to MAX_REASON_CHARS (with a mark that it was cut)."""
    if reason is None or len(reason) <= MAX_REASON_CHARS:
        return reason
    return reason[: MAX_REASON_CHARS - 1] + "\u2026"


def compact_json(data: Any, *, sort_keys: bool = False) -> str:
    """JSON as small as SQS (and a DynamoDB item) can hold it: no spaces, non-ASCII as itself
    (UTF-8: 1-4 bytes a character, where json.dumps' default \\uXXXX escapes take 6 or 12), and
    only what SQS refuses escaped (lone surrogates are not UTF-8 either)."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
    return _SQS_REFUSED.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def work_id_for(event: DeviceEvent) -> str:
    """The work's id, from the platform's event id where it has one: an event received twice (a
    resend after a 5xx that came after its reading was queued) is one work, and the registry's
    mark of its uploaded reading, keyed by work id, stops the second upload."""
    if event.event_id is None:
        return uuid.uuid4().hex
    return hashlib.sha256(f"{event.source}\n{event.event_id}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class WorkItem:
    event: DeviceEvent
    work_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    attempts: int = 0  # calls made so far
    first_seen: float = field(default_factory=clock.now)
    last_error: str | None = None
    not_before: float | None = None  # epoch seconds; set when a wait exceeds one SQS delay
    parked_reason: str | None = None  # set on the dead-letter queue
    # Since when the work waits (MAX_WORK_AGE_SECONDS counts from it): first_seen, or a redrive.
    waiting_since: float | None = None
    # The device was delivered when this work was queued: only its reading waits, for an upload
    # call (the retry function budgets one upload per batch of these, not integrate calls).
    upload_only: bool = False
    # An upload of this work's reading may have been stored without our seeing the answer (a
    # dropped connection, a timeout or a 5xx after sending, a receive that never finished): the
    # upload has no idempotency key, so the stored observations are looked up before it is re-sent.
    upload_uncertain: bool = False
    # This copy of the work, as one invocation holds it: not sent with the message, so that a
    # message SQS hands to two invocations at once yields two claimants, and only one gets the lease.
    holder: str = field(default_factory=lambda: uuid.uuid4().hex[:12], compare=False)

    @property
    def claimant(self) -> str:
        """Who holds the device's lease while this delivery runs."""
        return f"{self.work_id}.{self.holder}"

    @property
    def event_time(self) -> float:
        """When the platform says the event happened; when the bridge first had it, if it does not say.

        Deletions and creations are ordered by it: Event Grid and others redeliver out of order, for
        hours, so the order of arrival is not the order of events.
        """
        return self.event.occurred_at if self.event.occurred_at is not None else self.first_seen

    def age(self) -> float:
        """Seconds the work has waited so far."""
        since = self.waiting_since if self.waiting_since is not None else self.first_seen
        return clock.now() - since

    def after_attempt(self, error: str | None) -> WorkItem:
        return replace(self, attempts=self.attempts + 1, last_error=bounded_reason(error))

    def parked(self, reason: str) -> WorkItem:
        """The work as the dead-letter queue holds it, with why it was parked."""
        return replace(self, parked_reason=bounded_reason(reason), not_before=None)

    def device_only(self) -> WorkItem:
        """The work without its reading: what the webhook delivers directly."""
        return replace(self, event=replace(self.event, reading=None))

    def its_reading(self) -> WorkItem:
        """What is left to queue once the device is delivered: the reading's upload."""
        return replace(self, upload_only=True)

    def to_message(self) -> str:
        body: dict[str, Any] = {
            "version": WORK_VERSION,
            "work_id": self.work_id,
            "event": self.event.to_json(),
            "attempts": self.attempts,
            "first_seen": self.first_seen,
            "last_error": self.last_error,
            "not_before": self.not_before,
            "parked_reason": self.parked_reason,
        }
        if self.waiting_since is not None:
            body["waiting_since"] = self.waiting_since
        if self.upload_only:
            body["upload_only"] = True
        if self.upload_uncertain:
            body["upload_uncertain"] = True
        return compact_json(body)

    @classmethod
    def from_message(cls, body: str) -> WorkItem:
        data = json.loads(body)
        if not isinstance(data, dict):  # `[]` or `"x"` is JSON too: unreadable, as garbage is
            raise ValueError("a work item is a JSON object")
        if data.get("version") != WORK_VERSION:
            raise ValueError(f"unsupported work item version {data.get('version')!r}")
        return cls(
            event=DeviceEvent.from_json(data["event"]),
            work_id=data["work_id"],
            attempts=int(data["attempts"]),
            first_seen=float(data["first_seen"]),
            last_error=data.get("last_error"),
            not_before=data.get("not_before"),
            parked_reason=data.get("parked_reason"),
            waiting_since=data.get("waiting_since"),
            upload_only=bool(data.get("upload_only", False)),
            upload_uncertain=bool(data.get("upload_uncertain", False)),
        )


def agreeing_copies(works: Sequence[WorkItem]) -> list[WorkItem]:
    """The works, the copies of one work among them (a platform's resend queues its reading again
    under the same work id) agreeing with the copy whose upload may be stored: if one is
    `upload_uncertain`, every copy with the reading is marked, so that whichever is kept is looked
    up and whichever goes back on the queue keeps the mark, and takes that copy's `first_seen`,
    the timestamp of a reading the platform gave no measurement time, so the look-up asks for
    what that upload sent."""
    uncertain: dict[str, WorkItem] = {}
    for work in works:
        if work.upload_uncertain and work.event.reading is not None:
            uncertain.setdefault(work.work_id, work)
    return [_agreeing(work, uncertain.get(work.work_id)) for work in works]


def _agreeing(work: WorkItem, uncertain: WorkItem | None) -> WorkItem:
    if uncertain is None or work.event.reading is None:
        return work
    return replace(work, upload_uncertain=True, first_seen=uncertain.first_seen)
