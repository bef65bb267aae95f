"""The environment Lambda gives a handler in a sampled, traced invocation, and a stand-in for the
X-Ray daemon (a UDP socket on loopback) that keeps what the X-Ray SDK sends it."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# A trace header that says "sampled", as Lambda sets it per invocation when active tracing samples.
SAMPLED_TRACE_ID = "Root=1-674c1f00-5f2a8b3c9d0e1f2a3b4c5d6e;Parent=53995c3f42cd8ad8;Sampled=1"


def lambda_environment(function_name: str, daemon_address: str, memory_mb: int = 512) -> dict[str, str]:
    """os.environ plus what the Lambda runtime sets (tracing on: no POWERTOOLS_TRACE_DISABLED),
    for a fresh interpreter that plays one execution environment of `function_name`."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            str(ROOT / p) for p in ("layers/bridge", "functions/webhook", "functions/retry", ".")
        ),
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function_name),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": f"sensor-bridge-{function_name}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_XRAY_DAEMON_ADDRESS": daemon_address,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "_X_AMZN_TRACE_ID": SAMPLED_TRACE_ID,
        "AWS_REGION": os.environ.get("AWS_REGION", "eu-west-1"),
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "eu-west-1"),
    }
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    # The deployment package carries bytecode (see template.yaml's layer build): let it be written.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


class XRayDaemon:
    """Receives the X-Ray SDK's UDP datagrams (`{"format": "json", "version": 1}\\n<segment>`)."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.segments: list[dict[str, Any]] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._socket.getsockname()
        return f"{host}:{port}"

    def __enter__(self) -> XRayDaemon:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join()
        self._socket.close()

    def _receive(self) -> None:
        while not self._stopped.is_set():
            try:
                datagram = self._socket.recv(65535)
            except TimeoutError:
                continue
            _, _, body = datagram.partition(b"\n")
            self.segments.append(json.loads(body))

    def wait_for(self, condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the X-Ray daemon stand-in did not receive it: {self.names()}")
            time.sleep(0.05)

    def entities(self) -> list[dict[str, Any]]:
        """Every segment and subsegment received, nested ones included."""
        found, pending = [], list(self.segments)
        while pending:
            entity = pending.pop()
            found.append(entity)
            pending.extend(entity.get("subsegments", []))
        return found

    def names(self) -> list[str]:
        return [e.get("name", "") for e in self.entities()]
