"""Runs inside a fresh interpreter for bench.cold_start; prints one JSON line.

    python -m bench.cold_probe import MODULE [MODULE ...]   time importing the modules together
    python -m bench.cold_probe first-request INDEX          import webhook_handler, then two new devices

Only the standard library is imported before the clock starts.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time
from typing import Any


def _timed_import(modules: list[str]) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for module in modules:
        importlib.import_module(module)
    return {
        "wall_ms": round((time.perf_counter() - wall) * 1000, 2),
        "cpu_ms": round((time.process_time() - cpu) * 1000, 2),
    }


def _third_party_loaded() -> list[str]:
    names = ("boto3", "botocore", "httpx", "pydantic", "yaml", "standardwebhooks", "aws_xray_sdk", "jmespath")
    return sorted(m for m in names if m in sys.modules)


def _webhook(index: int, handler: Any) -> dict[str, Any]:
    from bench.devices import join_accept
    from local.apigw import HttpRequest, LambdaContext, http_api_event

    headers = {"content-type": "application/json", "x-bridge-token": "local-ttn-webhook-token"}
    request = HttpRequest("POST", "/webhooks/ttn-demo", headers, body=join_accept(index))
    event = http_api_event(request, "POST /webhooks/{source}", {"source": "ttn-demo"})
    context = LambdaContext(function_name="sensor-bridge-webhook")
    wall, cpu = time.perf_counter(), time.process_time()
    answer = handler(event, context)
    return {
        "wall_ms": round((time.perf_counter() - wall) * 1000, 2),
        "cpu_ms": round((time.process_time() - cpu) * 1000, 2),
        "status": answer["statusCode"],
    }


def first_request(index: int) -> dict[str, Any]:
    imported = _timed_import(["webhook_handler"])
    at_init = _third_party_loaded()
    handler = sys.modules["webhook_handler"].lambda_handler
    first = _webhook(index, handler)
    after_first = _third_party_loaded()
    second = _webhook(index + 1, handler)
    return {
        "import": imported,
        "first": first,
        "second": second,
        "loaded_at_init": at_init,
        "loaded_by_first_request": [m for m in after_first if m not in at_init],
    }


def main() -> None:
    if sys.argv[1] == "import":
        result: dict[str, Any] = _timed_import(sys.argv[2:])
        result["loaded"] = _third_party_loaded()
    else:
        result = first_request(int(sys.argv[2]))
    result["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
