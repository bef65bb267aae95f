"""Tracing in Lambda: a sampled invocation of the webhook function sends X-Ray subsegments for
the handler, the integrate call, the IMS token call and every AWS call, while importing the
handler loads neither the X-Ray SDK's recorder nor botocore.

The function runs in a fresh interpreter with the environment Lambda gives a traced, sampled
invocation; a UDP socket on loopback stands in for the X-Ray daemon at AWS_XRAY_DAEMON_ADDRESS.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from local.lambda_tracing import ROOT, SAMPLED_TRACE_ID, XRayDaemon, lambda_environment
from local.stack import LocalStack

# One execution environment: import the handler, then the first webhook of a new device (a
# generous timeout: this machine is shared, and the budget is not what is tested here).
FUNCTION = """
import json, sys
import webhook_handler
at_init = sorted(m for m in ("aws_xray_sdk.core", "botocore.client", "boto3") if m in sys.modules)
from local.apigw import LambdaContext
event = json.loads(open("events/ttn-01-join-accept.json").read())
answer = webhook_handler.lambda_handler(event, LambdaContext("sensor-bridge-webhook", timeout_seconds=30))
print(json.dumps({"status": answer["statusCode"], "body": answer["body"], "loaded_at_init": at_init}))
"""


def run_traced_webhook(stack: LocalStack) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    with XRayDaemon() as daemon:
        out = subprocess.run(  # noqa: S603 (our own interpreter and script)
            [sys.executable, "-c", FUNCTION],
            env=lambda_environment("webhook", daemon.address),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        # Subsegments are sent as they close: the last one leaves before the process ends.
        daemon.wait_for(lambda: any(e.get("name") == "## lambda_handler" for e in daemon.entities()))
    return json.loads(out.stdout.splitlines()[-1]), daemon.entities()


def test_a_sampled_invocation_traces_the_api_the_token_and_the_aws_calls(stack: LocalStack) -> None:
    answer, entities = run_traced_webhook(stack)
    assert answer["status"] == 200, answer
    names = {e["name"] for e in entities}
    assert {"## lambda_handler", "dynamodb", "secretsmanager"} <= names
    urls = [e["http"]["request"]["url"] for e in entities if e.get("namespace") == "remote"]
    assert any(u.endswith("/integrations/integrate") for u in urls), urls
    assert stack.simulator.token_url in urls
    aws = [e for e in entities if e.get("namespace") == "aws"]
    assert {e["aws"]["operation"] for e in aws} >= {"GetSecretValue", "UpdateItem"}
    # Every subsegment belongs to the invocation's trace, under the segment Lambda opened.
    root = SAMPLED_TRACE_ID.split(";")[0].removeprefix("Root=")
    assert {e["trace_id"] for e in entities if "trace_id" in e} == {root}


def test_importing_the_handler_loads_no_tracing_sdk_and_no_aws_sdk(stack: LocalStack) -> None:
    answer, _ = run_traced_webhook(stack)
    assert answer["loaded_at_init"] == []
