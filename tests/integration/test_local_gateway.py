"""The local gateway answers as API Gateway does: a crashed function is a 500 with API Gateway's
body, never a dropped connection; a port in use is a one-line error."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from local.gateway import Gateway, PortInUse
from local.template_routes import Route

ROUTE = Route("POST", "/webhooks/{source}", "WebhookFunction", "webhook_handler.lambda_handler")


def crashing_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise KeyError("sources.my-farm.auth.header.secret")


def test_a_crashing_function_answers_500_internal_server_error_and_one_line_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway = Gateway([(ROUTE, crashing_handler)], function_log=".local-stack.log").start()
    try:
        answer = httpx.post(f"{gateway.url}/webhooks/my-farm", json={"a": 1}, timeout=10)
    finally:
        gateway.stop()

    assert answer.status_code == 500
    assert answer.json() == {"message": "Internal Server Error"}
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        "gateway: WebhookFunction failed on POST /webhooks/my-farm (KeyError); answered 500; "
        "traceback in .local-stack.log"
    ]
    assert "Traceback" in captured.out  # the function log gets the traceback, as in Lambda


def test_a_function_answer_that_is_not_a_proxy_result_is_a_500_too() -> None:
    gateway = Gateway([(ROUTE, lambda event, context: None)]).start()
    try:
        answer = httpx.post(f"{gateway.url}/webhooks/x", content=b"{}", timeout=10)
    finally:
        gateway.stop()
    assert answer.status_code == 500


def test_a_port_in_use_is_refused_in_one_sentence() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse) as caught:
            Gateway([], port=port)
    assert str(caught.value) == (
        f"port {port} on 127.0.0.1 is already in use: stop what holds it, or choose another port "
        "(BRIDGE_PORT=..., --port)"
    )
