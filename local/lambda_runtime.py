"""What a new Lambda execution environment starts without: the bridge's per-process caches.

The local stack and the tests call `cold_start()` whenever they change the environment the
handlers read, as a new deployment would.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

from sensor_bridge.runtime.process import reset_process_state


def cold_start() -> None:
    reset_process_state()
    parameters.clear_caches()  # type: ignore[no-untyped-call]
