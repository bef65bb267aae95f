"""The embedded local stack: the whole bridge on one machine, no AWS account, no Docker.

moto (server mode) provides SQS, Secrets Manager and DynamoDB; the Sensor Data simulator and IMS
token endpoint run on loopback; a gateway serves template.yaml's routes to the real handlers; a
poller plays the SQS event source mapping for the retry function on simulated time.

    python -m local.stack run     replay events/, print what happened and a summary line
    python -m local.stack serve   keep it up for your own webhooks (Ctrl-C stops it)

Both can point the bridge at another Sensor Data API with your credentials, configuration and
webhook secrets instead (local/options.py: flags, environment, `local.env`); then no simulator
starts and the clock is real.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx

from local import atomic_dynamodb, moto_routing, quick_sqs, virtual_time
from local.banner import print_banner, write_operator_env
from local.gateway import ContextOptions, Gateway, PortInUse, decode_json, route_request
from local.lambda_runtime import cold_start
from local.options import BENTLEY_TOKEN_URL, OptionsError, StackOptions, add_flags, resolve
from local.poller import RetryPoller
from local.provision import LOCAL_WEBHOOK_SECRETS, ApiEndpoints, Resources, bridge_environment, provision
from local.readings_report import Readings, reading_marks, readings_of
from local.sim_rate_limit import RateLimit, add_rate_limit_arguments
from local.simulator import SensorDataSimulator
from local.template_routes import (
    ROOT,
    Handler,
    functions,
    http_routes,
    import_handler,
    load_template,
    sqs_consumer,
)
from sensor_bridge.model.config import DEFAULT_CONFIG_FILE, ConfigError
from sensor_bridge.model.profiles import device_ref_id
from sensor_bridge.runtime import clock
from sensor_bridge.store import registry
from sensor_bridge.store.config_check import check_config

EVENTS_DIR = ROOT / "events"
LOG_FILE = ROOT / ".local-stack.log"
LOCAL_AWS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",  # moto accepts any credentials
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_REGION": "eu-west-1",
    "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
    "POWERTOOLS_DEV": "false",
}


def limit_environment(limit: RateLimit) -> dict[str, str]:
    """The bridge's limiter set to the simulated API's limits, as an operator sets the template's
    parameters to the subscription's tier (no limit: one the bridge never reaches)."""
    return {
        "API_RATE_LIMIT_PER_MINUTE": str(limit.per_minute or 1_000_000),
        "API_RATE_LIMIT_PER_HOUR": str(limit.per_hour or 0),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LocalStack:
    def __init__(
        self,
        options: StackOptions | None = None,
        *,
        rate_limit_per_minute: int | None = None,
        gateway_port: int = 0,
        tier: str | None = None,
        rate_limit_per_hour: int | None = None,
        frozen_clock: bool = False,
    ) -> None:
        self.options = options or StackOptions()
        given = (tier, rate_limit_per_minute, rate_limit_per_hour) != (None, None, None)
        self.rate_limit = (
            RateLimit.of(tier, rate_limit_per_minute, rate_limit_per_hour)
            if given
            else self.options.rate_limit
        )
        # Benchmarks: simulated time stands still while the functions run (clock.freeze), and the
        # poller plays the event source's batching window (template.yaml's) on that time.
        self.frozen_clock = frozen_clock
        self.gateway_port = gateway_port
        self.webhook_secrets = self.options.webhook_secrets() or LOCAL_WEBHOOK_SECRETS
        self._moto: Any = None
        self._simulator: SensorDataSimulator | None = None
        self.gateway: Gateway | None = None
        self.resources: Resources | None = None
        self._poller: RetryPoller | None = None
        self._saved_env: dict[str, str | None] = {}
        # Per function (template logical id), when run_functions_with() gave each its own.
        self._function_envs: dict[str, dict[str, str]] = {}
        self._current_function: str | None = None
        self._function_names: set[str] = set()

    @property
    def simulator(self) -> SensorDataSimulator:
        """The embedded Sensor Data simulator, once `start()` has run."""
        if self._simulator is None:
            raise RuntimeError("the local stack has no embedded simulator: start() it first")
        return self._simulator

    @simulator.setter
    def simulator(self, simulator: SensorDataSimulator | None) -> None:
        self._simulator = simulator

    @property
    def has_simulator(self) -> bool:
        return self._simulator is not None

    @property
    def poller(self) -> RetryPoller:
        """The retry queue's event source mapping, once `start()` has run."""
        if self._poller is None:
            raise RuntimeError("the local stack has no poller: start() it first")
        return self._poller

    @poller.setter
    def poller(self, poller: RetryPoller | None) -> None:
        self._poller = poller

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> LocalStack:
        from moto.server import ThreadedMotoServer

        atomic_dynamodb.install()
        moto_routing.install()
        quick_sqs.install()
        if not self.real_clock:
            virtual_time.install()
            clock.freeze(self.frozen_clock)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request access log
        port = _free_port()
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._moto.start()
        self._set_env({**LOCAL_AWS, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
        if not self.options.external:
            self.simulator = SensorDataSimulator(clock=clock.now).start()
            limit = self.rate_limit
            self.simulator.configure(
                tier=limit.tier, rate_limit_per_minute=limit.per_minute, rate_limit_per_hour=limit.per_hour
            )
        self.reset()
        return self

    @property
    def real_clock(self) -> bool:
        """An API of yours counts its rate window in wall-clock time: so do the bridge and SQS."""
        return self.options.external

    def api_endpoints(self) -> ApiEndpoints:
        """What the functions call: the options' API, or the embedded simulator."""
        o = self.options
        if o.api_url is not None:
            api_url, token_url = o.api_url, o.token_url or BENTLEY_TOKEN_URL
        else:
            api_url, token_url = self.simulator.api_base_url, self.simulator.token_url
        return ApiEndpoints(api_url, token_url, o.itwin_id, str(o.config_file) if o.config_file else None)

    def reset(self) -> None:
        """A clean account and API: new resources, empty simulator, clock back to now."""
        self._drop_function_environments()
        endpoint = os.environ["AWS_ENDPOINT_URL"]
        httpx.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
        if self.has_simulator:
            self.simulator.reset()
        clock.reset()
        self.resources = provision(
            credentials=self.options.credentials(), webhook_secrets=self.webhook_secrets
        )
        self._set_env(bridge_environment(self.resources, self.api_endpoints()))
        if not self.options.external:  # an API of yours: the limiter keeps its (trial) defaults
            self._set_env(limit_environment(self.rate_limit))
        cold_start()
        template = load_template()
        handler_name, props = sqs_consumer(template)
        code_uris = {p["Handler"]: p.get("CodeUri") for p in functions(template).values()}
        self._consumer = next(n for n, p in functions(template).items() if p["Handler"] == handler_name)
        self.poller = RetryPoller(
            self.resources.retry_queue_url,
            self.resources.retry_queue_arn,
            import_handler(handler_name, code_uris.get(handler_name)),
            batch_size=int(props.get("BatchSize", 10)),
            real_clock=self.real_clock,
            batching_window_s=int(props.get("MaximumBatchingWindowInSeconds", 0)) if self.frozen_clock else 0,
            next_due=self._next_due_on_retry_queue,
        )
        self._routes = [
            (r, import_handler(r.handler, code_uris.get(r.handler))) for r in http_routes(template)
        ]

    def run_functions_with(self, environments: dict[str, dict[str, str]]) -> None:
        """Run each function (template logical id -> variables) in its own environment, as
        separate Lambda functions are: its variables and its role's credentials replace the
        shared ones around each invocation (one function at a time; a switch is a cold start).
        The poller receives and deletes with the retry function's credentials, as the event
        source mapping uses the function's role. reset() goes back to one shared environment."""
        assert self.resources is not None
        shared = bridge_environment(self.resources, self.api_endpoints())
        self._function_envs = environments
        self._function_names = set(shared) | {n for env in environments.values() for n in env}
        self._routes = [(r, self._as_function(r.function, h)) for r, h in self._routes]
        retry = environments[self._consumer]
        client = boto3.client(
            "sqs",
            aws_access_key_id=retry["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=retry["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=retry.get("AWS_SESSION_TOKEN"),
        )
        self.poller = self.poller.with_handler(self._as_function(self._consumer, self.poller.handler), client)

    def _as_function(self, function: str, handler: Handler) -> Handler:
        def invoke(event: dict[str, Any], context: Any) -> Any:
            if self._current_function != function:
                for name in self._function_names:
                    os.environ.pop(name, None)
                self._set_env(self._function_envs[function])
                boto3.DEFAULT_SESSION = None  # it holds the credentials it resolved first
                cold_start()
                self._current_function = function
            return handler(event, context)

        return invoke

    def _drop_function_environments(self) -> None:
        if not self._function_envs:
            return
        for name in self._function_names:
            os.environ.pop(name, None)
        self._set_env({name: LOCAL_AWS[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
        boto3.DEFAULT_SESSION = None
        self._function_envs, self._current_function = {}, None

    def start_gateway(self) -> Gateway:
        self.gateway = Gateway(self._routes, port=self.gateway_port, function_log=LOG_FILE.name).start()
        return self.gateway

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
        if self._simulator is not None:
            self._simulator.stop()
        if self._moto is not None:
            self._moto.stop()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        clock.reset()
        clock.freeze(False)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _set_env(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    # -- acting ----------------------------------------------------------------------------
    def invoke(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        function_seconds: float | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """One request through API Gateway's routing to the real handler, in-process. Concurrent
        calls run concurrently, as concurrent Lambda invocations do. `function_seconds`: the time
        the function is given instead of the template's timeout."""
        context = (
            ContextOptions() if function_seconds is None else ContextOptions(timeout_seconds=function_seconds)
        )
        status, answer_headers, payload = route_request(
            self._routes, method, path, headers or {}, body, **context
        )
        return status, answer_headers, decode_json(payload)

    def drain(self, **kwargs: Any) -> None:
        self.poller.drain(**kwargs)

    def deliver_due(self) -> None:
        """What the event source mapping would have delivered by now: on simulated time, fast-
        forwarding up to an hour while every message waits; on the real clock, what is due."""
        if self.real_clock:
            self.poller.deliver_ready()
        else:
            self.poller.drain(max_simulated_s=3600)

    # -- reading ---------------------------------------------------------------------------
    def queue_messages(self, which: str) -> list[dict[str, Any]]:
        """The work items on the retry or dead-letter queue, delayed and in-flight ones included,
        read from moto's state without consuming them. Each carries `_delay_seconds`: the
        DelaySeconds it was sent with."""
        items = []
        queue = self._moto_queue(which)
        for message in list(queue._messages):
            body = json.loads(message.body)
            delayed_until = float(message.delayed_until or 0)
            sent = float(message.sent_timestamp or 0)
            body["_delay_seconds"] = round(max(0.0, delayed_until - sent) / 1000) if delayed_until else 0
            items.append(body)
        return items

    def take_messages(self, which: str) -> list[dict[str, Any]]:
        """The work items on a queue, as `queue_messages` reads them, and the queue emptied: a test
        then hands them to the retry function in the order it chooses (SQS's PurgeQueue allows
        one purge a minute)."""
        items = self.queue_messages(which)
        self._moto_queue(which)._messages.clear()
        return items

    def _moto_queue(self, which: str) -> Any:
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.sqs.models import sqs_backends

        assert self.resources is not None
        url = self.resources.retry_queue_url if which == "retry" else self.resources.dead_letter_queue_url
        return sqs_backends[DEFAULT_ACCOUNT_ID][os.environ["AWS_DEFAULT_REGION"]].queues[
            url.rsplit("/", 1)[1]
        ]

    def _next_due_on_retry_queue(self) -> float | None:
        """Seconds until the first delayed or in-flight message on the retry queue may be received."""
        now_ms = clock.now() * 1000
        waits = [
            max(float(m.delayed_until or 0), float(m.visible_at or 0)) - now_ms
            for m in list(self._moto_queue("retry")._messages)
        ]
        return max(0.0, min(waits)) / 1000 if waits else None

    # -- stepping simulated time (appended for the delivery scenario tests) ------------------
    def advance(self, seconds: float) -> None:
        """Move simulated time (the bridge's clock, SQS delays, the simulator's rate window)."""
        virtual_time.advance(seconds)

    def poll_once(self) -> int:
        """One retry batch, as the event source mapping would receive it; its size."""
        return self.poller.poll_once()

    def run_for(self, simulated_s: float) -> None:
        """Run the retry function for `simulated_s` of simulated time, drained or not."""
        self.poller.run_for(simulated_s)

    def post_event(self, event: dict[str, Any]) -> tuple[int, Any]:
        """An API Gateway HTTP API event (as in events/) through the real webhook handler."""
        body = event.get("body") or ""
        content = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")
        status, _, answer = self.invoke(
            event["requestContext"]["http"]["method"],
            event["rawPath"],
            headers=event["headers"],
            body=content,
        )
        return status, answer


# -- replaying events/ ---------------------------------------------------------------------
@dataclass
class Replayed:
    name: str
    source: str
    status: int
    answer: Any
    devices: list[dict[str, Any]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


def webhook_events(folder: Path = EVENTS_DIR) -> list[tuple[str, dict[str, Any]]]:
    """The API Gateway HTTP API events in events/ (SQS samples and others are skipped)."""
    found = []
    for path in sorted(folder.glob("*.json")):
        event = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(event, dict) and event.get("version") == "2.0" and "routeKey" in event:
            found.append((path.name, event))
    return found


def replay(
    client: httpx.Client, base_url: str, event: dict[str, Any], secrets: dict[str, str]
) -> httpx.Response:
    body = event.get("body") or ""
    content = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")
    query = event.get("rawQueryString") or ""
    url = f"{base_url}{event['rawPath']}" + (f"?{query}" if query else "")
    source = (event.get("pathParameters") or {}).get("source", "")
    headers = signed_now(dict(event.get("headers") or {}), content, source, secrets)
    return client.request(event["requestContext"]["http"]["method"], url, headers=headers, content=content)


def signed_now(
    headers: dict[str, str], body: bytes, source: str, secrets: dict[str, str] | None = None
) -> dict[str, str]:
    """A Standard Webhooks sender signs each delivery as it sends it. The replay does the same
    with the source's secret (default: the demo secrets), so a sample recorded earlier is not
    refused as stale; a sample whose source has no secret goes out exactly as recorded."""
    from standardwebhooks.webhooks import Webhook

    from sensor_bridge.model.source_auth import StandardWebhooksAuth
    from sensor_bridge.store.config_source import current_config

    if "webhook-signature" not in headers or "webhook-id" not in headers:
        return headers
    config_source = current_config().sources.get(source)
    if config_source is None or not isinstance(config_source.auth, StandardWebhooksAuth):
        return headers
    secret = (secrets or LOCAL_WEBHOOK_SECRETS).get(config_source.auth.secret)
    if secret is None:
        return headers
    now = datetime.now(UTC)
    signature = Webhook(secret).sign(headers["webhook-id"], now, body.decode("utf-8"))
    return {**headers, "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature}


@contextlib.contextmanager
def logs_to(path: Path) -> Iterator[None]:
    """Send the functions' JSON logs and EMF metrics (stdout in Lambda) and moto's access log to
    a file, so the terminal shows the story, not the noise."""
    from sensor_bridge.runtime.observability import logger

    with path.open("w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        handler = logger.registered_handler
        previous = handler.setStream(log) if isinstance(handler, logging.StreamHandler) else None
        try:
            yield
        finally:
            if previous is not None and isinstance(handler, logging.StreamHandler):
                handler.setStream(previous)


def run(options: StackOptions) -> int:
    with LocalStack(options) as stack:
        gateway = stack.start_gateway()
        moto_url = os.environ["AWS_ENDPOINT_URL"]
        if stack.has_simulator:
            print(f"local stack: gateway {gateway.url}  simulator {stack.simulator.url}  moto {moto_url}")
            print(f"Sensor Data rate limit: {stack.rate_limit.describe()}")
        else:
            print(f"local stack: gateway {gateway.url}  moto {moto_url}")
            print(f"Sensor Data API: {options.api_url} (yours; real clock: a Retry-After is waited out)")
        print(f"function logs and EMF metrics: {LOG_FILE.name}\n")
        replayed: list[Replayed] = []
        started = time.monotonic()
        with logs_to(LOG_FILE), httpx.Client(timeout=30) as client:
            for name, event in webhook_events():
                answer = replay(client, gateway.url, event, stack.webhook_secrets)
                body = decode_json(answer.content)
                results = body.get("results", []) if isinstance(body, dict) else []
                source = (event.get("pathParameters") or {}).get("source", "?")
                replayed.append(
                    Replayed(name, source, answer.status_code, body, results, dict(answer.headers.items()))
                )
            stack.drain()
            report = Report.build(stack, replayed)
        print_webhooks(replayed)
        print_devices(report)
        batches = stack.poller.stats.batches if stack.poller else 0
        if stack.real_clock:
            print(f"\nreal time taken: {time.monotonic() - started:.0f} s  retry batches: {batches}")
            print("duplicate devices in Sensor Data: not known here (ask your API)")
        else:
            print(
                f"\nsimulated time fast-forwarded: {virtual_time.elapsed():.0f} s  retry batches: {batches}"
            )
            print(f"duplicate devices in Sensor Data: {report.duplicates}")
            print(f"observations uploaded twice: {report.readings.uploaded_twice}")
        print(report.summary_line())
        clean = report.lost == 0 and not report.duplicates and not report.readings.uploaded_twice
        return 0 if clean else 1


@dataclass
class Report:
    webhooks: int
    integrated: int
    retried: int
    dead_lettered: int
    lost: int
    duplicates: int
    rows: list[dict[str, Any]]
    readings: Readings = field(default_factory=Readings)

    @classmethod
    def build(cls, stack: LocalStack, replayed: list[Replayed]) -> Report:
        present, created = _downstream(stack)
        parked = {
            (m["event"]["source"], m["event"]["device_id"]): m for m in stack.queue_messages("dead-letter")
        }
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for item in replayed:
            if not 200 <= item.status < 300:
                continue
            for result in item.devices:
                key = (item.source, result["device"])
                row = rows.setdefault(key, {"source": item.source, "device": result["device"], "answers": []})
                row["answers"].append(result["status"])
        for (source, device), row in rows.items():
            ref = device_ref_id(source, device)
            # removed, never created (nothing to remove), or its creation came after its deletion
            gone = ("removed", "unknown-device", "superseded")
            removed_asked = any(status in gone for status in row["answers"])
            row["ref"] = ref
            row["created"] = created(ref)
            row["in_sensor_data"] = present(source, device)
            row["parked"] = parked.get((source, device), {}).get("parked_reason")
            if removed_asked and row["answers"][-1] in gone:
                row["final"] = row["answers"][-1] if not row["in_sensor_data"] else "LOST (still present)"
            elif row["in_sensor_data"]:
                row["final"] = "integrated after retry" if "queued" in row["answers"] else "integrated"
            elif row["parked"]:
                row["final"] = "parked"
            else:
                row["final"] = "LOST"
        values = list(rows.values())
        assert stack.resources is not None
        marks = reading_marks(stack.resources.registry_table)
        for (source, device), row in rows.items():
            row["readings"] = marks.get((source, device), 0)
        accepted = [r for item in replayed if 200 <= item.status < 300 for r in item.devices]
        stored = stack.simulator.state()["observations"] if stack.has_simulator else None
        readings = readings_of(accepted, marks, list(parked.values()), stored)
        return cls(
            webhooks=len(replayed),
            integrated=sum(1 for r in values if r["in_sensor_data"]),
            retried=sum(1 for r in values if r["final"] == "integrated after retry"),
            dead_lettered=len(parked),
            lost=sum(1 for r in values if r["final"].startswith("LOST")) + readings.lost,
            duplicates=sum(1 for r in values if isinstance(r["created"], int) and r["created"] > 1),
            rows=values,
            readings=readings,
        )

    def summary_line(self) -> str:
        return (
            f"summary: webhooks={self.webhooks} integrated={self.integrated} retried={self.retried} "
            f"dead_lettered={self.dead_lettered} readings={self.readings.accepted} "
            f"forwarded={self.readings.forwarded} observations={self.readings.observations} "
            f"readings_parked={self.readings.parked} lost={self.lost}"
        )


def print_webhooks(replayed: list[Replayed]) -> None:
    print(f"{'webhook (events/)':<40} {'source':<16} {'HTTP':>4}  answer")
    for item in replayed:
        if isinstance(item.answer, dict) and "results" in item.answer:
            text = ", ".join(_result_text(r) for r in item.answer["results"])
        elif isinstance(item.answer, dict) and "error" in item.answer:
            text = f"{item.answer['error']['code']}: {item.answer['error']['message']}"
        elif isinstance(item.answer, dict):
            text = json.dumps(item.answer)[:70]
        elif item.answer is None:
            # A handshake answered in headers only (CloudEvents' OPTIONS).
            shown = {k: v for k, v in item.headers.items() if k.lower().startswith("webhook-")}
            text = ", ".join(f"{k}: {v}" for k, v in shown.items()) or "(empty body)"
        else:
            text = str(item.answer)[:70]
        print(f"{item.name:<40} {item.source:<16} {item.status:>4}  {text}")


def _result_text(result: dict[str, Any]) -> str:
    """`device: status`, with a queued answer's reason and wait: `queued (rate-limited, 61 s)`."""
    notes = [result["reason"]] if result["status"] == "queued" and "reason" in result else []
    if "retryInSeconds" in result:
        notes.append(f"retry in {result['retryInSeconds']} s")
    if "firstStatus" in result:
        notes.append(f"first: {result['firstStatus']}")
    return f"{result['device']}: {result['status']}" + (f" ({', '.join(notes)})" if notes else "")


def print_devices(report: Report) -> None:
    print(f"\n{'device':<36} {'source':<16} {'created':>7} {'readings':>8}  final")
    for row in report.rows:
        reason = f"  ({row['parked']})" if row["parked"] else ""
        print(
            f"{row['device']:<36} {row['source']:<16} {row['created']:>7} {row['readings']:>8}  "
            f"{row['final']}{reason}"
        )


def _downstream(stack: LocalStack) -> tuple[Callable[[str, str], bool], Callable[[str], int | str]]:
    """Whether Sensor Data holds a device, and how often it was created: the simulator's state,
    or, for an API of yours, the registry's view (creations unknown: "-")."""
    if not stack.has_simulator:

        def registered(source: str, device: str) -> bool:
            record = registry.default_registry().get_device(source, device)
            return record is not None and record.state == "integrated"

        return registered, lambda _ref: "-"
    state = stack.simulator.state()
    live = {d["refId"] for d in state["devices"] if not d["removed"]}
    created: dict[str, int] = state["created"]
    return lambda source, device: device_ref_id(source, device) in live, lambda ref: created.get(ref, 0)


def serve(options: StackOptions) -> int:
    with LocalStack(options, gateway_port=options.port) as stack:
        gateway = stack.start_gateway()
        print_banner(stack, gateway.url, LOG_FILE)
        env_file = write_operator_env(stack)
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            with logs_to(LOG_FILE):
                while not stop.wait(1.0):
                    stack.deliver_due()
        finally:
            env_file.unlink(missing_ok=True)
        print("\nstopped", flush=True)
    return 0


def check_at_start(options: StackOptions) -> None:
    """What would otherwise fail at the first webhook fails here: the configuration file (as
    `python -m sensor_bridge.config check` checks it) against the secrets the stack will load."""
    config_file = options.config_file or DEFAULT_CONFIG_FILE
    problems = check_config(config_file, options.webhook_secrets() or LOCAL_WEBHOOK_SECRETS)
    if problems:
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        lines = "".join(f"\n  {problem}" for problem in problems)
        raise OptionsError(f"{config_file}: {count}, nothing started:{lines}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.stack", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="replay events/ and print what happened")
    add_rate_limit_arguments(run_p, default_per_minute=8)  # low, so that some webhooks meet a 429
    serve_p = sub.add_parser("serve", help="keep the stack up for your own webhooks")
    add_rate_limit_arguments(serve_p)
    for command in (run_p, serve_p):
        add_flags(command)
    args = parser.parse_args(argv)
    try:
        options = resolve(args)
        check_at_start(options)
        return run(options) if args.command == "run" else serve(options)
    except (OptionsError, ConfigError, PortInUse) as exc:
        print(f"local stack: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
