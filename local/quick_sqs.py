"""moto's SQS reads the whole attribute map of a queue to check one of them on every message it
accepts (`queue.attributes.get("ContentBasedDeduplication")` in `send_message`), and the map's
three message counts walk every message on the queue, each asking the time twice: a send costs
time in proportion to the queue's length, so 1,400 messages took 67 s here, 1.2 s for the last
call of ten. SQS's own send costs the same whatever the queue holds. The local stack gives moto's
queues an attribute map that computes only the attributes asked for, by moto's own rules (those
of moto 5.2.5, pinned): what `GetQueueAttributes` answers is unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any


class _Attributes(Mapping[str, Any]):
    """The attribute map of one moto Queue, each value computed when it is read."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue

    def _names(self) -> list[str]:
        queue = self._queue
        names = list(queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            names += queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:
            names += queue.KMS_ATTRIBUTES
        if queue.policy:
            names.append("Policy")
        if queue.redrive_policy:
            names.append("RedrivePolicy")
        return list(dict.fromkeys(names))  # RedrivePolicy is a base attribute too

    def __getitem__(self, name: str) -> Any:
        from moto.core.utils import camelcase_to_underscores

        if name not in self._names():
            raise KeyError(name)
        # As moto's map: a set policy overrides the base attribute's value, a redrive policy as JSON.
        if name == "Policy" and self._queue.policy:
            value = self._queue.policy
        elif name == "RedrivePolicy" and self._queue.redrive_policy:
            value = json.dumps(self._queue.redrive_policy)
        else:
            value = getattr(self._queue, camelcase_to_underscores(name))
        return str(value).lower() if isinstance(value, bool) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


def install() -> None:
    """Give moto's queues the lazy attribute map (idempotent)."""
    from moto.sqs.models import Queue

    if getattr(Queue, "_quick_attributes", False):
        return
    Queue.motos_own_attributes = Queue.__dict__["attributes"]  # type: ignore[attr-defined]  # the tests compare
    Queue.attributes = property(_Attributes)  # type: ignore[assignment,method-assign]
    Queue._quick_attributes = True  # type: ignore[attr-defined]
