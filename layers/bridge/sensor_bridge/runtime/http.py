"""The one HTTP client of the process: kept across warm invocations for connection reuse."""

from __future__ import annotations

from functools import cache

import httpx

USER_AGENT = "sensor-bridge/0.1 (+https://github.com/sensor-bridge)"


@cache
def http_client() -> httpx.Client:
    return httpx.Client(
        headers={"User-Agent": USER_AGENT},
        timeout=httpx.Timeout(10.0, connect=3.0),
        # Platforms' timeouts are short: never wait on a redirect chain or a proxy from the env.
        follow_redirects=False,
        trust_env=False,
    )
