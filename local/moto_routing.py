"""moto's server finds the backend for every request anew: it lists moto's package directory (an
`isdir` per service, some 150) and then tries every service's URL patterns in turn: about a
tenth of its time per request in bench.readings. The answer depends on the host alone, so the
local stack keeps it per host: the request is then handled by the same backend, as before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def install() -> None:
    """Remember moto's backend per host (idempotent)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original: Callable[[Any, str | None], Any] = DomainDispatcherApplication.get_backend_for_host
    if getattr(original, "_per_host", False):
        return

    @functools.wraps(original)
    def get_backend_for_host(self: Any, host: str | None) -> Any:
        # Called under the dispatcher's lock; a miss only computes what moto would have.
        found: dict[str | None, Any] = self.__dict__.setdefault("_backend_per_host", {})
        if host not in found:
            found[host] = original(self, host)
        return found[host]

    get_backend_for_host._per_host = True  # type: ignore[attr-defined]
    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]
