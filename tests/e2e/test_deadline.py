"""One deadline per invocation, read by every outbound call: the IMS token fetch, the integrate
call (a total deadline, not one per read) and the AWS calls (botocore's timeouts and attempts
chosen from what is left). Work that runs out of time is queued, never lost; a call that may have
been applied is probed before the device is created again.

Each test runs the real webhook handler on the local stack with the Lambda context the gateway
gives it (the template's 4 s) and asserts that the answer came within that time.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from local.apigw import LambdaContext
from local.lambda_runtime import cold_start
from local.stack import LocalStack
from tests.scenario import Ledger, ref, tts_event, with_node

FUNCTION_SECONDS = LambdaContext("WebhookFunction").timeout_seconds  # the template's 4 s


def timed_post(ledger: Ledger, event: dict[str, Any]) -> tuple[int, Any, float]:
    started = time.monotonic()
    status, body = ledger.post(event)
    return status, body, time.monotonic() - started


def test_a_trickling_answer_ends_by_the_deadline_and_the_work_is_queued_then_probed(
    stack: LocalStack, ledger: Ledger
) -> None:
    with_node(ledger)
    # The API applies the change, then sends its answer a byte every 50 ms (about a minute).
    stack.simulator.inject({"trickle_ms": 50})

    status, body, took = timed_post(ledger, tts_event())

    assert took < FUNCTION_SECONDS  # before: the function outlived its timeout, reading
    assert status == 202
    assert body["results"][0]["status"] == "queued"
    assert "timed out" in body["results"][0]["detail"]
    stack.drain()
    # The first `new` may have been applied: the retry probes and finds it, and creates nothing.
    assert stack.simulator.state()["created"][ref("strain-gauge-01")] == 1
    ledger.check()


def test_a_slow_token_endpoint_takes_its_time_from_the_same_deadline(
    stack: LocalStack, ledger: Ledger
) -> None:
    with_node(ledger)
    cold_start()  # a new execution environment: no token cached
    stack.simulator.inject({"operation": "token", "trickle_ms": 50})

    status, body, took = timed_post(ledger, tts_event())

    assert took < FUNCTION_SECONDS  # before: the token fetch alone took longer
    assert status == 202
    assert body["results"][0]["status"] == "queued"
    assert "token endpoint" in body["results"][0]["detail"]
    stack.drain()
    assert stack.simulator.state()["created"][ref("strain-gauge-01")] == 1
    ledger.check()


def test_a_trickling_node_listing_ends_by_the_deadline_and_the_work_is_queued(
    stack: LocalStack, ledger: Ledger
) -> None:
    # No node yet: the webhook lists the asset's nodes first, and that answer (`{"nodes": []}`)
    # trickles a byte every 400 ms: no read waits long, the whole answer takes about 5 s.
    stack.simulator.inject({"operation": "nodes", "trickle_ms": 400})

    status, body, took = timed_post(ledger, tts_event())

    assert took < FUNCTION_SECONDS  # before: the listing read on, a byte at a time
    assert status == 202
    assert body["results"][0]["status"] == "queued"
    assert "timed out" in body["results"][0]["detail"]
    stack.drain()
    assert len(stack.simulator.state()["nodes"]) == 1
    assert stack.simulator.state()["created"][ref("strain-gauge-01")] == 1
    ledger.check()


class StallingProxy:
    """A loopback TCP proxy in front of moto. While `stalled` is set, a request is taken in and
    never answered (its connection is closed once the client gives up), as an AWS endpoint that
    hangs does."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.stalled = threading.Event()
        self.held = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._server.accept()
                threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.target) as upstream:
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
            with contextlib.suppress(OSError):
                while data := client.recv(65536):
                    if self.stalled.is_set():
                        self.held += 1
                        while client.recv(65536):  # hold it until the client gives up
                            pass
                        return
                    upstream.sendall(data)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)


@pytest.fixture
def stalling_aws(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[StallingProxy]:
    moto = urlsplit(boto3.client("sqs").meta.endpoint_url)
    proxy = StallingProxy((moto.hostname or "127.0.0.1", moto.port or 80))
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    yield proxy
    proxy.stalled.clear()
    proxy.close()


def test_a_stalling_aws_endpoint_is_answered_within_the_functions_time(
    stack: LocalStack, ledger: Ledger, stalling_aws: StallingProxy
) -> None:
    with_node(ledger)  # the webhook function is the one loaded ...
    cold_start()  # ... and now reaches AWS through the proxy
    stalling_aws.stalled.set()

    status, body, took = timed_post(ledger, tts_event())

    assert stalling_aws.held > 0
    assert took < FUNCTION_SECONDS  # before: botocore's 2 s + 3 s per attempt, three attempts
    assert status >= 500  # nothing was promised: the platform sends it again
    assert "error" in body or "message" in body
    stalling_aws.stalled.clear()
    status, body = ledger.post(tts_event())  # the platform's resend, with AWS back
    assert status == 200
    ledger.check()
