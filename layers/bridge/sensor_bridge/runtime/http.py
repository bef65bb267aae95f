"""The one HTTP client of the process (kept across warm invocations for connection reuse), and a
request that ends by a total deadline and a size cap."""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import httpx

USER_AGENT = "sensor-bridge/0.1 (+https://github.com/sensor-bridge)"
# The longest pause a body may take between two of its chunks: an answer's body follows its
# headers at once (the API's are a few KB); less than the time kept back after the deadline.
BODY_PAUSE_SECONDS = 0.5
# The most an answer's body may hold once decoded. The API's answers are a few KB; a node listing
# of tens of thousands of nodes a few MB. The cap keeps one answer (an endless body, a compressed
# one that inflates a thousandfold) from taking a 512 MB function's memory.
ANSWER_MAX_BYTES = 16 * 1024 * 1024


class AnswerTooLarge(httpx.DecodingError):
    """The answer's body passed ANSWER_MAX_BYTES: it was answered (with `status`), but not read."""

    def __init__(self, status: int, limit: int, request: httpx.Request) -> None:
        super().__init__(f"{status} with a body of more than {limit} bytes", request=request)
        self.status = status


@cache
def http_client() -> httpx.Client:
    return httpx.Client(
        headers={"User-Agent": USER_AGENT},
        timeout=httpx.Timeout(10.0, connect=3.0),
        # Platforms' timeouts are short: never wait on a redirect chain or a proxy from the env.
        follow_redirects=False,
        trust_env=False,
    )


def post_within(url: str, seconds: float, **kwargs: Any) -> httpx.Response:
    """POST and have the whole answer within `seconds`, or raise httpx.ReadTimeout."""
    return request_within("POST", url, seconds, **kwargs)


def request_within(method: str, url: str, seconds: float, **kwargs: Any) -> httpx.Response:
    """Send and have the whole answer within `seconds`, or raise httpx.ReadTimeout (and
    AnswerTooLarge past ANSWER_MAX_BYTES).

    httpx's timeouts bound each phase and each read, not the call (it has no total timeout:
    encode/httpx#1450), so an answer that trickles in a few bytes at a time never trips them.
    Here the answer is streamed and the deadline checked after every chunk, and once the headers
    are in, each read of the body may wait at most BODY_PAUSE_SECONDS (set through the request's
    `timeout` extension, which httpcore reads when the body's first read starts): a body that
    stops half-way cannot hold the call far past its deadline either."""
    deadline = time.monotonic() + seconds
    with http_client().stream(method, url, timeout=seconds, **kwargs) as response:
        timeouts = response.request.extensions.get("timeout")
        if isinstance(timeouts, dict):
            timeouts["read"] = max(min(deadline - time.monotonic(), BODY_PAUSE_SECONDS), 0.001)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > ANSWER_MAX_BYTES:
                raise AnswerTooLarge(response.status_code, ANSWER_MAX_BYTES, response.request)
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("no complete answer by the deadline", request=response.request)
        # The chunks are decoded already: the answer built from them must not be decoded again.
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "content-encoding"]
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=b"".join(chunks),
            request=response.request,
            extensions=response.extensions,
        )
