"""The local stack and the simulator as separate processes, started as `make` starts them: for
the tests that drive them as a reader of the README would."""

from __future__ import annotations

import os
import queue
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.conftest import ROOT

PYTHONPATH = "layers/bridge:functions/webhook:functions/retry:."  # as the Makefile exports it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env() -> dict[str, str]:
    """Nothing of this test process's own local stack (its fixtures set the bridge's variables)."""
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, "PYTHONPATH": PYTHONPATH}


def wait_for(condition: Callable[[], bool], seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.2)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def simulator_process(*args: str) -> Iterator[str]:
    """`python -m local.simulator` on a free port, in another process; its base URL."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "local.simulator", "--port", str(port), *args],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(f"{url}/_sim/state"), 20, "the simulator did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


class Serve:
    """`python -m local.stack serve` as `make serve` runs it; its banner read line by line."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "local.stack", "serve", *args],
            cwd=ROOT,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.banner: list[str] = []
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def read_banner(self, timeout: float = 60) -> list[str]:
        """Up to the banner's last line (it says where the export line is written)."""
        deadline = time.monotonic() + timeout
        while not self.banner or "while it runs" not in self.banner[-1]:
            self.banner.append(self.lines.get(timeout=max(0.1, deadline - time.monotonic())))
        return self.banner

    def export(self) -> dict[str, str]:
        line = next(line.strip() for line in self.banner if line.strip().startswith("export "))
        return dict(item.split("=", 1) for item in shlex.split(line)[1:])

    def stop(self) -> tuple[str, str]:
        self.process.terminate()
        out, err = self.process.communicate(timeout=20)
        return "\n".join(self.banner) + out, err
