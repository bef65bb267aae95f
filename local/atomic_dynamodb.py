"""DynamoDB applies each write, its condition included, atomically; moto checks the condition and
then applies the write, with no lock between, so two threads can both pass
`attribute_not_exists(pk)` and a lease or a limiter's compare-and-set would hold for both. The
local stack's moto (threads in this process, like the concurrent Lambda instances it plays)
takes one lock around every item read and write, as DynamoDB's own per-item serialisation does.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

_lock = threading.RLock()
_CALLS = ("get_item", "put_item", "update_item", "delete_item", "transact_write_items", "transact_get_items")


def install() -> None:
    """Serialise moto's DynamoDB item calls (idempotent)."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in _CALLS:
        original: Callable[..., Any] = getattr(DynamoDBBackend, name)
        if getattr(original, "_serialised", False):
            continue

        @functools.wraps(original)
        def serialised(self: Any, *args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            with _lock:
                return _original(self, *args, **kwargs)

        serialised._serialised = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, serialised)
