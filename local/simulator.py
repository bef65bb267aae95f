"""A Bentley iTwin Sensor Data API simulator plus an IMS-style token endpoint, over real HTTP.

Standard library only; docs/SIMULATOR.md is the user's guide (every route, with curl examples).
It serves, on loopback:

* ``POST /connect/token`` - OAuth2 client credentials (form fields or HTTP Basic client auth),
  scope ``itwin-platform``; answers OAuth2-style errors (``{"error": "invalid_client"}``).
* ``POST /sensor-data/integrations/integrate`` - the integrate call, with the seed's request,
  response and error shapes (``{"error": {"code", "message", "target"?}}``).
* ``POST /sensor-data/data/upload`` - readings against the sensor ids integrate assigned; 202 and
  no body, or 422 ``InvalidUploadDataRequest`` with a ``target`` (``local.sim_upload``).
* ``POST /sensor-data/data/observations`` - query raw data: the stored observations of some
  sensors in a time range (``local.sim_query``: the reference gives no body shape, so that module
  is the simulator's model of it); 200, or 422 ``InvalidQueryDataRequest`` with a ``target``.
* ``GET /sensor-data/integrations/nodes[?iTwinId=]`` - ``{"nodes": [...]}``, each node as the
  integrate answer gave it, with the ``NAME`` it was created with.
* ``/_sim/...`` - unauthenticated admin and inspection routes:
  ``GET /_sim/state``, ``GET|POST /_sim/config`` (``tier``, ``rate_limit_per_minute``,
  ``rate_limit_per_hour``, ``token_ttl_seconds``, ``upload_max_observations``; posting refills
  every rate budget), ``POST|DELETE /_sim/faults`` (``local.sim_faults``: a FIFO of ``{"status",
  "retry_after", "body", "latency_ms", "drop", "count", "after_apply", "operation"}`` applied to
  the next calls of that operation that pass auth and the rate limit), ``POST /_sim/expire-tokens``,
  ``POST /_sim/reset``.
  A status or drop fault with ``"after_apply": true`` fails *after* the request was processed: the
  call is applied in full (as the real API does when its gateway answers 502/504, or the
  connection drops, after the backend committed), then the fault status is answered with an
  API-style error body (or the connection is dropped) instead of the success. Its ``latency_ms`` is
  spent after the apply. Only a request that would have succeeded is affected: one that would be
  answered 422 is answered its 422 and changes nothing.
  The same is available in-process: ``state()``, ``configure()``, ``inject()``, ``clear_faults()``,
  ``expire_tokens()``, ``reset()``; in-process only, ``set_catalogue()`` makes ``new`` items with an
  INTEGRATION_ID outside a given list a 422 (as the platform's run-time catalogue would).

Every API call is checked in this order: Authorization header (401 ``HeaderNotFound``), token (401
``InvalidAuthorizationToken``), "IoT Creator" role (403), rate limit (429; ``local.sim_rate_limit``:
a per-minute token bucket plus an hourly cap, one budget per OAuth client across all its
operations), injected faults, then the body (422 with a ``target``); ``after_apply`` faults come
after the body instead. ``state()`` records every call with its final status: integrate calls in
``calls``, uploads in ``upload_calls``, queries in ``query_calls``, listings in
``node_list_calls``; a dropped connection is
recorded as status 0 with ``"dropped": true``, and a call that was applied before its fault
answered carries ``"applied": true``. Stored readings are in ``observations``.

Behaviour the real API does not document, and what the simulator assumes:

* ``new`` for a ``refId`` that already exists creates a second device (or sensor);
  ``state()["created"]`` counts ``new`` creations per ``refId`` (devices and sensors alike).
  ``update``/``remove`` address the most recently created, not yet removed, item with that ``refId``.
* The 200 answer never echoes ``refId`` and lists each device's sensors sorted by their generated id
  (reversed if that happens to be the order they were created in), so clients must match by props.
* Every device an integrate call touches is answered, removed ones included (with their last props).
  The sensors answered for a device are the ones it had before the call plus those the call created
  (sensors removed by the call are still answered, with their last props).
* A whole request is validated before any state changes: it is applied to a copy that is only kept
  when every item succeeded (all-or-nothing). Uploads are all-or-nothing too.
* A node takes the client's ``integration.props`` (``NAME``...) at creation and on ``update``.
  Removing a node (``integration.changeState == "remove"``) is not supported and answers 422.
* The node listing has no paging (none is documented); without ``iTwinId`` it lists the nodes
  created without one.
* Removing a sensor or device removes its stored observations.

Run it in the foreground with ``python -m local.simulator --port 8765 [--tier trial]
[--rate-limit N] [--rate-limit-hour N]``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import copy
import json
import secrets
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from local.sim_faults import Fault, FaultQueue, fault_code, parse_fault
from local.sim_query import QUERY_CODE, check_query, matching
from local.sim_rate_limit import (
    RateLimit,
    RateLimiter,
    add_rate_limit_arguments,
    positive_or_none,
    rate_limit_from_args,
)
from local.sim_upload import UPLOAD_CODE, UploadRefused, check_upload, declared_metrics

__all__ = [
    "DEFAULT_PROJECT_ID",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "IOT_CREATOR_ROLE",
    "NO_ROLE_CLIENT_ID",
    "NO_ROLE_CLIENT_SECRET",
    "SCOPE",
    "SensorDataSimulator",
    "SimClient",
]

IOT_CREATOR_ROLE = "IoT Creator"
SCOPE = "itwin-platform"
DEMO_CLIENT_ID = "bridge-local-client"
DEMO_CLIENT_SECRET = "bridge-local-secret"
NO_ROLE_CLIENT_ID = "bridge-no-role-client"
NO_ROLE_CLIENT_SECRET = "bridge-no-role-secret"
DEFAULT_PROJECT_ID = "6295B89C93266401FA614392"

API_PREFIX = "/sensor-data"
INTEGRATE_PATH = API_PREFIX + "/integrations/integrate"
NODES_PATH = API_PREFIX + "/integrations/nodes"
UPLOAD_PATH = API_PREFIX + "/data/upload"
QUERY_PATH = API_PREFIX + "/data/observations"
TOKEN_PATH = "/connect/token"
CHANGE_STATES = frozenset({"new", "update", "remove"})
# Props only the platform sets; clients cannot overwrite them.
SERVER_PROPS = frozenset({"SERIAL_NO", "SIZE", "CREATION_DATE", "NODE_ID", "PROJECT_ID"})

MSG_HEADER_NOT_FOUND = "Header Authorization was not found in the request. Access denied."
MSG_INVALID_TOKEN = "The access token provided is invalid or has expired. Access denied."
MSG_INSUFFICIENT = "The user has insufficient permissions for the requested operation."
MSG_TOO_MANY = "More requests were received than the subscription rate-limit allows."
MSG_MISSING_INTEGRATION_ID = (
    "Minimum request parameters not provided, new Devices and Sensors must have a valid "
    "`props.INTEGRATION_ID` set."
)
MSG_NOT_AN_INTEGRATION = (
    "The request body is not an integration: expected a JSON object with an `integration` object."
)

JSON = Any
CONFIG_KEYS = frozenset(
    {"tier", "rate_limit_per_minute", "rate_limit_per_hour", "token_ttl_seconds", "upload_max_observations"}
)


@dataclass
class SimClient:
    """An IMS client the token endpoint knows. ``"IoT Creator"`` in ``roles`` is needed to integrate."""

    client_id: str
    client_secret: str
    roles: frozenset[str]


def default_clients() -> list[SimClient]:
    """The demo client (with the IoT Creator role) and a client without any role."""
    return [
        SimClient(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, frozenset({IOT_CREATOR_ROLE})),
        SimClient(NO_ROLE_CLIENT_ID, NO_ROLE_CLIENT_SECRET, frozenset()),
    ]


class _Unset(Enum):
    UNSET = "unset"


_UNSET = _Unset.UNSET


@dataclass
class _Token:
    client_id: str
    roles: frozenset[str]
    expires_at: float


@dataclass
class _Sensor:
    ref_id: str
    id: str
    props: dict[str, JSON]
    removed: bool = False


@dataclass
class _Device:
    ref_id: str
    node_id: str
    id: str
    props: dict[str, JSON]
    removed: bool = False
    sensors: list[_Sensor] = field(default_factory=list)


@dataclass
class _Model:
    """Everything an integrate call may change; forked, changed and swapped in as one."""

    nodes: dict[str, dict[str, JSON]] = field(default_factory=dict)
    devices: list[_Device] = field(default_factory=list)
    created: dict[str, int] = field(default_factory=dict)
    used_hex: set[str] = field(default_factory=set)
    # (nodeId, refId) -> positions in devices, oldest first: update/remove find theirs without a scan.
    positions: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    owned: set[int] = field(default_factory=set)

    def fork(self) -> _Model:
        """A copy to apply one request to: the containers are copied, the devices shared until
        one is changed (``own``), so a call costs what it touches, not the size of the model."""
        return _Model(
            dict(self.nodes), list(self.devices), dict(self.created), set(self.used_hex), dict(self.positions)
        )

    def own(self, index: int) -> _Device:
        if index not in self.owned:
            self.devices[index] = copy.deepcopy(self.devices[index])
            self.owned.add(index)
        return self.devices[index]

    def find(self, node_id: str, ref_id: str) -> _Device | None:
        """The most recently created, not removed, device with that refId, ready to change."""
        for index in reversed(self.positions.get((node_id, ref_id), [])):
            if not self.devices[index].removed:
                return self.own(index)
        return None

    def add(self, device: _Device) -> None:
        self.owned.add(len(self.devices))
        key = (device.node_id, device.ref_id)
        self.positions[key] = [*self.positions.get(key, []), len(self.devices)]
        self.devices.append(device)


_Process = Callable[[bytes, dict[str, str]], "_Reply"]


@dataclass
class _Reply:
    status: int
    payload: JSON = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    drop: bool = False
    trickle_s: float = 0.0  # send the body a byte at a time, this far apart


class _IntegrationError(Exception):
    def __init__(
        self, message: str, target: str | None = None, code: str = "InvalidProcessIntegrationRequest"
    ):
        super().__init__(message)
        self.message = message
        self.target = target
        self.code = code


def _api_error(code: str, message: str, target: str | None = None) -> dict[str, JSON]:
    error: dict[str, JSON] = {"code": code, "message": message}
    if target is not None:
        error["target"] = target
    return {"error": error}


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SensorDataSimulator:
    """Sensor Data API + IMS token endpoint on loopback; see the module docstring."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        rate_limit_per_minute: int | None = None,
        token_ttl_seconds: int = 3600,
        clients: list[SimClient] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # The clock is injectable so that the local stack's simulated time moves the rate-limit
        # buckets, token expiry and upload times together with the queues' delays.
        self._clock = clock
        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._clients = {c.client_id: c for c in (clients if clients is not None else default_clients())}
        # Tiers and hourly caps are set with configure(); the constructor keeps the one knob
        # every caller already passes (a custom per-minute rate).
        self._limiter = RateLimiter(RateLimit.of(per_minute=rate_limit_per_minute), clock)
        self.token_ttl_seconds = token_ttl_seconds
        self.upload_max_observations: int | None = None
        # The platform's catalogue of integration ids (None: any id is known). The bridge checks
        # an id's form before it starts; only the API knows which ids exist.
        self._catalogue: frozenset[str] | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._clear()

    # ------------------------------------------------------------------ lifecycle

    def _clear(self) -> None:
        self._model = _Model()
        self._tokens: dict[str, _Token] = {}
        self._calls: list[dict[str, JSON]] = []
        self._upload_calls: list[dict[str, JSON]] = []
        self._query_calls: list[dict[str, JSON]] = []
        self._node_list_calls: list[dict[str, JSON]] = []
        self._observations: list[dict[str, JSON]] = []
        self._sensor_metrics: dict[str, frozenset[str]] | None = None
        self._faults = FaultQueue()
        self._token_requests = 0
        self._limiter.reset()

    def start(self) -> SensorDataSimulator:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        server = _Server((self._host, self._port), _Handler)
        server.simulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="sensor-data-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> SensorDataSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def api_base_url(self) -> str:
        return self.url + API_PREFIX

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    # ------------------------------------------------------------------ admin (Python API)

    def state(self) -> dict[str, JSON]:
        """Nodes, devices (with sensors and removed flags), creations per refId, the integrate
        ``calls``, stored ``observations``, ``upload_calls``, ``query_calls``, ``node_list_calls``,
        token requests."""
        with self._lock:
            model = self._model
            return copy.deepcopy(
                {
                    "nodes": list(model.nodes.values()),
                    "devices": [
                        {
                            "refId": d.ref_id,
                            "nodeId": d.node_id,
                            "id": d.id,
                            "props": d.props,
                            "removed": d.removed,
                            "sensors": [
                                {"refId": s.ref_id, "id": s.id, "props": s.props, "removed": s.removed}
                                for s in d.sensors
                            ],
                        }
                        for d in model.devices
                    ],
                    "created": model.created,
                    "calls": self._calls,
                    "observations": self._observations,
                    "upload_calls": self._upload_calls,
                    "query_calls": self._query_calls,
                    "node_list_calls": self._node_list_calls,
                    "token_requests": self._token_requests,
                }
            )

    def requests_seen(self) -> int:
        """How many requests reached the API (integrate, upload, query, node listing, token). Cheap,
        unlike state(): for checking after every request whether anything got through."""
        with self._lock:
            return (
                len(self._calls)
                + len(self._upload_calls)
                + len(self._query_calls)
                + len(self._node_list_calls)
                + self._token_requests
            )

    def integrate_calls_from(self, index: int) -> list[dict[str, JSON]]:
        """Copies of the integrate calls recorded from position `index` on."""
        with self._lock:
            return copy.deepcopy(self._calls[index:])

    def config(self) -> dict[str, JSON]:
        with self._lock:
            return {
                **self._limiter.limit.as_config(),
                "token_ttl_seconds": self.token_ttl_seconds,
                "upload_max_observations": self.upload_max_observations,
            }

    @property
    def rate_limit(self) -> RateLimit:
        return self._limiter.limit

    def configure(
        self,
        *,
        tier: str | _Unset | None = _UNSET,
        rate_limit_per_minute: int | _Unset | None = _UNSET,
        rate_limit_per_hour: int | _Unset | None = _UNSET,
        token_ttl_seconds: int | _Unset = _UNSET,
        upload_max_observations: int | _Unset | None = _UNSET,
    ) -> dict[str, JSON]:
        """Change the configuration; every call refills every client's rate budget.

        The rate-limit keys given in one call define the whole limit: ``tier`` picks a preset
        (``unlimited``, ``trial``, ``paid``) and numbers given beside it override the preset's
        (the tier becomes ``custom``); a number not given is no limit of that kind, unless the
        preset sets it. A call without any rate-limit key leaves the limit as it is."""
        limit = None
        if not all(isinstance(k, _Unset) for k in (tier, rate_limit_per_minute, rate_limit_per_hour)):
            limit = RateLimit.of(
                None if isinstance(tier, _Unset) else tier,
                None if isinstance(rate_limit_per_minute, _Unset) else rate_limit_per_minute,
                None if isinstance(rate_limit_per_hour, _Unset) else rate_limit_per_hour,
            )
        if not isinstance(token_ttl_seconds, _Unset) and (
            not isinstance(token_ttl_seconds, int) or isinstance(token_ttl_seconds, bool)
        ):
            raise ValueError("token_ttl_seconds must be an integer")
        if not isinstance(upload_max_observations, _Unset):
            positive_or_none("upload_max_observations", upload_max_observations)
        with self._lock:
            if not isinstance(token_ttl_seconds, _Unset):
                self.token_ttl_seconds = token_ttl_seconds
            if not isinstance(upload_max_observations, _Unset):
                self.upload_max_observations = upload_max_observations
            self._limiter.reset(limit)
            return self.config()

    def set_catalogue(self, integration_ids: list[str] | None) -> None:
        """Refuse (422) `new` items whose INTEGRATION_ID is not among these; None accepts any."""
        with self._lock:
            self._catalogue = frozenset(integration_ids) if integration_ids is not None else None

    def inject(self, *faults: dict[str, JSON]) -> int:
        """Queue faults (FIFO per operation, see ``local.sim_faults``); returns how many calls
        are now queued."""
        parsed = [parse_fault(f) for f in faults]
        with self._lock:
            return self._faults.extend(parsed)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def expire_tokens(self) -> int:
        """Make every issued token expired; returns how many there were."""
        with self._lock:
            for token in self._tokens.values():
                token.expires_at = 0.0
            return len(self._tokens)

    def rotate_client_secret(self, client_id: str, new_secret: str) -> None:
        """IMS accepts only ``new_secret`` for the client from now on (a rotation in the portal)."""
        with self._lock:
            self._clients[client_id].client_secret = new_secret

    def reset(self) -> None:
        """Forget state, calls, faults, tokens and counters; keep the configuration."""
        with self._lock:
            self._clear()

    # ------------------------------------------------------------------ token endpoint

    def _token_with_faults(self, headers: dict[str, str], body: bytes) -> _Reply:
        """The token endpoint, slowed, failed or dropped by a fault for ``token`` if one is queued."""
        with self._lock:
            fault = self._faults.take("token")
        if fault is not None and fault.latency_ms:
            time.sleep(fault.latency_ms / 1000)
        if fault is not None and fault.drop:
            return _Reply(0, drop=True)
        if fault is not None and fault.status is not None:
            reply = _Reply(fault.status, {"error": "temporarily_unavailable"})
        else:
            reply = self._token(headers, body)
        if fault is not None:
            reply.trickle_s = fault.trickle_ms / 1000
        return reply

    def _token(self, headers: dict[str, str], body: bytes) -> _Reply:
        with self._lock:
            self._token_requests += 1
        form = {
            k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()
        }
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = headers.get("authorization", "")
        if auth[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            if ":" in decoded:
                basic_id, basic_secret = decoded.split(":", 1)
                client_id, client_secret = unquote(basic_id), unquote(basic_secret)
            else:
                client_id = client_secret = None
        client = self._clients.get(client_id or "")
        if client is None or not secrets.compare_digest(client.client_secret, client_secret or ""):
            return _Reply(400, {"error": "invalid_client"})
        if form.get("grant_type") != "client_credentials":
            return _Reply(400, {"error": "unsupported_grant_type"})
        scopes = set(form.get("scope", "").split())
        if not scopes or scopes != {SCOPE}:
            return _Reply(400, {"error": "invalid_scope"})
        access_token = secrets.token_urlsafe(32)
        with self._lock:
            ttl = self.token_ttl_seconds
            self._tokens[access_token] = _Token(client.client_id, client.roles, self._clock() + ttl)
        return _Reply(
            200,
            {"access_token": access_token, "token_type": "Bearer", "expires_in": ttl, "scope": SCOPE},
            {"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    # ------------------------------------------------------------------ API calls (shared)

    def _gate(
        self, headers: dict[str, str], operation: str
    ) -> tuple[_Reply | None, Fault | None, dict[str, str]]:
        """Auth, rate limit and the next fault. Returns (final reply or None, fault, extra headers)."""
        auth = headers.get("authorization")
        if auth is None:
            return _Reply(401, _api_error("HeaderNotFound", MSG_HEADER_NOT_FOUND)), None, {}
        scheme, _, token_value = auth.strip().partition(" ")
        with self._lock:
            token = self._tokens.get(token_value.strip()) if scheme.lower() == "bearer" else None
            if token is None or token.expires_at <= self._clock():
                reply = _Reply(
                    401,
                    _api_error("InvalidAuthorizationToken", MSG_INVALID_TOKEN),
                    {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
                return reply, None, {}
            if IOT_CREATOR_ROLE not in token.roles:
                return _Reply(403, _api_error("InsufficientPermissions", MSG_INSUFFICIENT)), None, {}
            # The budget is the OAuth client's, whichever of its tokens and operations is used.
            admission = self._limiter.admit(token.client_id)
            if not admission.admitted:
                return _Reply(429, _api_error("TooManyRequests", MSG_TOO_MANY), admission.headers), None, {}
            return None, self._faults.take(operation), admission.headers

    def _fault_reply(self, fault: Fault, operation: str, extra: dict[str, str]) -> _Reply:
        status = cast(int, fault.status)
        headers = dict(extra)
        if status == 429:
            headers["iTwinPlatform-RateLimit-RemainingCalls"] = "0"
            if self.rate_limit.limited:
                headers["iTwinPlatform-Tier"] = self.rate_limit.header_tier
        if fault.retry_after is not None:
            headers["Retry-After"] = fault.retry_after
            headers["iTwinPlatform-RateLimit-Retry-After-Seconds"] = fault.retry_after
        if fault.body is not None:
            headers["Content-Type"] = "text/plain; charset=utf-8"
            return _Reply(status, headers=headers, raw=fault.body.encode("utf-8"))
        codes_422 = {"upload": UPLOAD_CODE, "query": QUERY_CODE}
        code = codes_422.get(operation, fault_code(status)) if status == 422 else fault_code(status)
        message = MSG_TOO_MANY if status == 429 else f"Simulated fault: HTTP {status}."
        return _Reply(status, _api_error(code, message), headers)

    def _serve(
        self, operation: str, headers: dict[str, str], body: bytes, query: dict[str, str], process: _Process
    ) -> _Reply:
        """One API call: gate, fault, then ``process`` (which answers its success or its 422).
        An ``after_apply`` fault runs ``process`` first and, if it succeeded, answers the fault."""
        arrived = self._clock()  # the local stack's simulated time, like the rate budgets
        reply, fault, extra = self._gate(headers, operation)
        applied = False
        if fault is not None and fault.after_apply:
            reply = process(body, query)
            applied = 200 <= reply.status < 300
        if fault is not None and (applied or not fault.after_apply):
            if fault.latency_ms:
                time.sleep(fault.latency_ms / 1000)
            if fault.drop:
                reply = _Reply(0, drop=True)
            elif fault.status is not None:
                reply = self._fault_reply(fault, operation, extra)
        if reply is None:
            reply = process(body, query)
        if fault is not None:
            reply.trickle_s = fault.trickle_ms / 1000
        reply.headers = {**extra, **reply.headers}
        self._record(self._logs[operation], reply, body, query, arrived, applied)
        return reply

    @property
    def _logs(self) -> dict[str, list[dict[str, JSON]]]:
        return {
            "integrate": self._calls,
            "upload": self._upload_calls,
            "query": self._query_calls,
            "nodes": self._node_list_calls,
        }

    # ------------------------------------------------------------------ the operations

    def _process_integrate(self, body: bytes, query: dict[str, str]) -> _Reply:
        try:
            parsed: JSON = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _Reply(422, _api_error("InvalidProcessIntegrationRequest", MSG_NOT_AN_INTEGRATION))
        try:
            return _Reply(200, self._integrate(parsed, query))
        except _IntegrationError as err:
            return _Reply(422, _api_error(err.code, err.message, err.target))

    def _process_upload(self, body: bytes, _query: dict[str, str]) -> _Reply:
        parsed = _json_or_none(body)
        with self._lock:
            try:
                accepted = check_upload(parsed, self._live_sensor_metrics(), self.upload_max_observations)
            except UploadRefused as err:
                return _Reply(422, _api_error(UPLOAD_CODE, err.message, err.target))
            uploaded_at = self._clock()
            self._observations.extend({**o, "uploadedAt": uploaded_at} for o in accepted)
        # The API documents 202 ACCEPTED and no body.
        return _Reply(202, raw=b"")

    def _process_query(self, body: bytes, _query: dict[str, str]) -> _Reply:
        parsed = _json_or_none(body)
        with self._lock:
            try:
                asked = check_query(parsed, self._live_sensor_metrics())
            except UploadRefused as err:
                return _Reply(422, _api_error(QUERY_CODE, err.message, err.target))
            return _Reply(200, {"observations": matching(self._observations, asked)})

    def _process_nodes(self, _body: bytes, query: dict[str, str]) -> _Reply:
        project = query.get("iTwinId") or DEFAULT_PROJECT_ID
        with self._lock:
            nodes = [n for n in self._model.nodes.values() if n["props"].get("PROJECT_ID") == project]
            return _Reply(200, {"nodes": copy.deepcopy(nodes)})

    def _live_sensor_metrics(self) -> dict[str, frozenset[str]]:
        """Each live sensor's id and declared metrics; rebuilt after each applied integrate call."""
        if self._sensor_metrics is None:
            self._sensor_metrics = {
                s.id: declared_metrics(s.props)
                for d in self._model.devices
                if not d.removed
                for s in d.sensors
                if not s.removed
            }
        return self._sensor_metrics

    def _record(
        self,
        log: list[dict[str, JSON]],
        reply: _Reply,
        body: bytes,
        query: dict[str, str],
        arrived: float,
        applied: bool,
    ) -> None:
        try:
            recorded: JSON = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            recorded = body.decode("utf-8", "replace")
        call: dict[str, JSON] = {"status": reply.status, "body": recorded, "query": query, "at": arrived}
        if reply.drop:
            call["dropped"] = True
        if applied:
            call["applied"] = True
        with self._lock:
            log.append(call)

    def _integrate(self, body: JSON, query: dict[str, str]) -> dict[str, JSON]:
        """Validate the whole request, apply it to a copy, and keep the copy only if all went well."""
        if not isinstance(body, dict) or not isinstance(body.get("integration"), dict):
            raise _IntegrationError(MSG_NOT_AN_INTEGRATION)
        integration: dict[str, JSON] = body["integration"]
        devices_in = self._check_shapes(integration)
        self._check_items(devices_in)
        with self._lock:
            model = self._model.fork()
            node = self._resolve_node(model, integration, query)
            answered = [self._apply_device(model, node, i, dev) for i, dev in enumerate(devices_in)]
            answer = {
                "integration": {
                    "node": copy.deepcopy(node),
                    "devices": [self._answer_device(dev, sensors) for dev, sensors in answered],
                }
            }
            self._model = model
            self._sensor_metrics = None
            if any(item.get("changeState") == "remove" for _, item in self._items(devices_in)):
                self._forget_removed_observations()
        return answer

    def _forget_removed_observations(self) -> None:
        """Removing a sensor or device removes its observations, as the API documents."""
        live = self._live_sensor_metrics()
        self._observations = [o for o in self._observations if o["sensorId"] in live]

    @staticmethod
    def _check_shapes(integration: dict[str, JSON]) -> list[dict[str, JSON]]:
        devices = integration.get("devices", [])
        if devices is None:
            devices = []
        if not isinstance(devices, list):
            raise _IntegrationError("`integration.devices` must be an array.", "integration.devices")
        for i, dev in enumerate(devices):
            where = f"integration.devices[{i}]"
            if not isinstance(dev, dict):
                raise _IntegrationError(f"`{where}` must be an object.", where)
            if not isinstance(dev.get("props", {}), dict):
                raise _IntegrationError(f"`{where}.props` must be an object.", f"{where}.props")
            sensors = dev.get("sensors", [])
            if sensors is not None and not isinstance(sensors, list):
                raise _IntegrationError(f"`{where}.sensors` must be an array.", f"{where}.sensors")
            for j, sen in enumerate(sensors or []):
                swhere = f"{where}.sensors[{j}]"
                if not isinstance(sen, dict):
                    raise _IntegrationError(f"`{swhere}` must be an object.", swhere)
                if not isinstance(sen.get("props", {}), dict):
                    raise _IntegrationError(f"`{swhere}.props` must be an object.", f"{swhere}.props")
        return devices

    @staticmethod
    def _items(devices: list[dict[str, JSON]]) -> list[tuple[str, dict[str, JSON]]]:
        items: list[tuple[str, dict[str, JSON]]] = []
        for i, dev in enumerate(devices):
            items.append((f"integration.devices[{i}]", dev))
            items.extend(
                (f"integration.devices[{i}].sensors[{j}]", s) for j, s in enumerate(dev.get("sensors") or [])
            )
        return items

    def _check_items(self, devices: list[dict[str, JSON]]) -> None:
        items = self._items(devices)
        for where, item in items:
            integration_id = (item.get("props") or {}).get("INTEGRATION_ID")
            if item.get("changeState") == "new" and not (
                isinstance(integration_id, str) and integration_id.strip()
            ):
                raise _IntegrationError(MSG_MISSING_INTEGRATION_ID, f"{where}.props.INTEGRATION_ID")
            known = self._catalogue
            if item.get("changeState") == "new" and known is not None and integration_id not in known:
                raise _IntegrationError(
                    f"INTEGRATION_ID {integration_id!r} is not in the catalogue.",
                    f"{where}.props.INTEGRATION_ID",
                )
        for where, item in items:
            state = item.get("changeState")
            if not isinstance(state, str) or state not in CHANGE_STATES:
                raise _IntegrationError(
                    f"Invalid changeState {state!r}: expected one of new, update, remove.",
                    f"{where}.changeState",
                )
        for where, item in items:
            ref_id = item.get("refId")
            if not isinstance(ref_id, str) or not ref_id.strip():
                raise _IntegrationError(
                    "Minimum request parameters not provided, Devices and Sensors must have a `refId` set.",
                    f"{where}.refId",
                )

    def _resolve_node(
        self, model: _Model, integration: dict[str, JSON], query: dict[str, str]
    ) -> dict[str, JSON]:
        state = integration.get("changeState")
        if state is not None and state not in CHANGE_STATES:
            raise _IntegrationError(
                f"Invalid changeState {state!r}: expected one of new, update, remove.",
                "integration.changeState",
            )
        if not isinstance(integration.get("props", {}), dict):
            raise _IntegrationError("`integration.props` must be an object.", "integration.props")
        node_id = integration.get("nodeId")
        if node_id is not None:
            if not isinstance(node_id, str) or node_id not in model.nodes:
                raise _IntegrationError(f"Node {node_id} was not found", "integration.nodeId")
            if state == "remove":
                raise _IntegrationError(
                    "Removing a node is not supported by the simulator.", "integration.changeState"
                )
            if state == "update":
                model.nodes[node_id] = copy.deepcopy(model.nodes[node_id])  # the live model's is shared
                model.nodes[node_id]["props"].update(self._client_props(integration))
            return model.nodes[node_id]
        if state != "new":
            raise _IntegrationError(
                "Minimum request parameters not provided, `integration.nodeId` is required unless "
                "`integration.changeState` is `new`.",
                "integration.nodeId",
            )
        return self._new_node(model, integration, query)

    def _new_node(
        self, model: _Model, integration: dict[str, JSON], query: dict[str, str]
    ) -> dict[str, JSON]:
        serial = self._new_hex(model)
        node: dict[str, JSON] = {
            "props": {
                "SERIAL_NO": serial,
                "CREATION_DATE": _now_iso(),
                "INTEGRATION_ID": "NODE_API_SDE",
                "PROJECT_ID": query.get("iTwinId") or DEFAULT_PROJECT_ID,
                "NAME": f"Data Source API Import {serial}",
            },
            "id": f"/api/{serial}/node",
            "type": "DYNAMIC",
        }
        # A node keeps the NAME (and other props) it was created with, so a client can find it again.
        node["props"].update(self._client_props(integration))
        model.nodes[node["id"]] = node
        return node

    @staticmethod
    def _new_hex(model: _Model) -> str:
        while True:
            value = secrets.token_hex(3).upper()
            if value not in model.used_hex:
                model.used_hex.add(value)
                return value

    @staticmethod
    def _client_props(item: dict[str, JSON]) -> dict[str, JSON]:
        return {k: v for k, v in (item.get("props") or {}).items() if k not in SERVER_PROPS}

    def _new_props(self, node: dict[str, JSON], item: dict[str, JSON], *, device: bool) -> dict[str, JSON]:
        given = self._client_props(item)
        props: dict[str, JSON] = {"SERIAL_NO": str(uuid.uuid4())}
        if device:
            props["SIZE"] = 0
        props["CREATION_DATE"] = _now_iso()
        props["NODE_ID"] = node["id"]
        props["INTEGRATION_ID"] = given.pop("INTEGRATION_ID")
        props["PROJECT_ID"] = node["props"]["PROJECT_ID"]
        if "NAME" in given:
            props["NAME"] = given.pop("NAME")
        props.update(given)
        return props

    def _apply_device(
        self, model: _Model, node: dict[str, JSON], index: int, item: dict[str, JSON]
    ) -> tuple[_Device, list[_Sensor]]:
        where = f"integration.devices[{index}]"
        state, ref_id = item["changeState"], item["refId"]
        if state == "new":
            hex_id = self._new_hex(model)
            device = _Device(
                ref_id=ref_id,
                node_id=node["id"],
                id=f"{node['id']}/dynamic/{hex_id}/device",
                props=self._new_props(node, item, device=True),
            )
            model.add(device)
            model.created[ref_id] = model.created.get(ref_id, 0) + 1
        else:
            found = model.find(node["id"], ref_id)
            if found is None:
                raise _IntegrationError(
                    f"Device with refId '{ref_id}' was not found in node {node['id']}.", f"{where}.refId"
                )
            device = found
        answered = [s for s in device.sensors if not s.removed]
        if state == "remove":
            device.removed = True
            for sensor in device.sensors:
                sensor.removed = True
            return device, answered
        if state == "update":
            device.props.update(self._client_props(item))
        answered += self._apply_sensors(model, node, device, item, where)
        device.props["SIZE"] = sum(1 for s in device.sensors if not s.removed)
        return device, answered

    def _apply_sensors(
        self, model: _Model, node: dict[str, JSON], device: _Device, item: dict[str, JSON], where: str
    ) -> list[_Sensor]:
        """The item's sensor changes on an owned device; returns the sensors it created."""
        created: list[_Sensor] = []
        for j, sen in enumerate(item.get("sensors") or []):
            swhere = f"{where}.sensors[{j}]"
            sstate, sref = sen["changeState"], sen["refId"]
            if sstate == "new":
                sensor = _Sensor(
                    ref_id=sref,
                    id=f"{device.id}/{self._new_hex(model)}/sensor",
                    props=self._new_props(node, sen, device=False),
                )
                device.sensors.append(sensor)
                created.append(sensor)
                model.created[sref] = model.created.get(sref, 0) + 1
                continue
            matches = [s for s in device.sensors if s.ref_id == sref and not s.removed]
            if not matches:
                raise _IntegrationError(
                    f"Sensor with refId '{sref}' was not found in device {device.id}.", f"{swhere}.refId"
                )
            if sstate == "update":
                matches[-1].props.update(self._client_props(sen))
            else:
                matches[-1].removed = True
        return created

    @staticmethod
    def _answer_device(device: _Device, sensors: list[_Sensor]) -> dict[str, JSON]:
        ordered = sorted(sensors, key=lambda s: s.id)
        if len(ordered) > 1 and [s.id for s in ordered] == [s.id for s in sensors]:
            ordered.reverse()
        return {
            "device": {"props": copy.deepcopy(device.props), "id": device.id, "type": "DYNAMIC"},
            "sensors": [
                {
                    "props": copy.deepcopy(s.props),
                    "id": s.id,
                    "observationType": "DYNAMIC",
                    "type": "DYNAMIC",
                    "device": device.id,
                }
                for s in ordered
            ],
        }

    # ------------------------------------------------------------------ admin (HTTP)

    def _admin_config(self, body: bytes) -> _Reply:
        data = _json_object(body)
        if data is None:
            return _Reply(400, _api_error("BadRequest", "Expected a JSON object."))
        unknown = set(data) - CONFIG_KEYS
        if unknown:
            return _Reply(400, _api_error("BadRequest", f"Unknown config keys: {sorted(unknown)}"))
        try:
            effective = self.configure(**{key: data.get(key, _UNSET) for key in CONFIG_KEYS})
        except ValueError as err:
            return _Reply(400, _api_error("BadRequest", str(err)))
        return _Reply(200, effective)

    def _admin_faults(self, body: bytes) -> _Reply:
        data = _json_object(body)
        if data is None or not isinstance(data.get("faults"), list):
            return _Reply(400, _api_error("BadRequest", 'Expected {"faults": [...]}.'))
        try:
            queued = self.inject(*data["faults"])
        except ValueError as err:
            return _Reply(400, _api_error("BadRequest", str(err)))
        return _Reply(200, {"queued_calls": queued})

    def _admin_clear_faults(self, _body: bytes) -> _Reply:
        self.clear_faults()
        return _Reply(200, {"queued_calls": 0})

    def _admin_expire(self, _body: bytes) -> _Reply:
        return _Reply(200, {"expired": self.expire_tokens()})

    def _admin_reset(self, _body: bytes) -> _Reply:
        self.reset()
        return _Reply(200, {"reset": True, "config": self.config()})

    # ------------------------------------------------------------------ routing

    def _route(
        self, method: str, path: str, headers: dict[str, str], body: bytes, query: dict[str, str]
    ) -> _Reply:
        routes: dict[str, dict[str, Callable[[], _Reply]]] = {
            TOKEN_PATH: {"POST": lambda: self._token_with_faults(headers, body)},
            INTEGRATE_PATH: {
                "POST": lambda: self._serve("integrate", headers, body, query, self._process_integrate)
            },
            UPLOAD_PATH: {"POST": lambda: self._serve("upload", headers, body, query, self._process_upload)},
            QUERY_PATH: {"POST": lambda: self._serve("query", headers, body, query, self._process_query)},
            NODES_PATH: {"GET": lambda: self._serve("nodes", headers, body, query, self._process_nodes)},
            "/_sim/state": {"GET": lambda: _Reply(200, self.state())},
            "/_sim/config": {
                "GET": lambda: _Reply(200, self.config()),
                "POST": lambda: self._admin_config(body),
            },
            "/_sim/faults": {
                "POST": lambda: self._admin_faults(body),
                "DELETE": lambda: self._admin_clear_faults(body),
            },
            "/_sim/expire-tokens": {"POST": lambda: self._admin_expire(body)},
            "/_sim/reset": {"POST": lambda: self._admin_reset(body)},
        }
        methods = routes.get(path)
        if methods is None:
            return _Reply(404, _api_error("NotFound", f"No route for {method} {path}."))
        handler = methods.get(method)
        if handler is None:
            allowed = ", ".join(sorted(methods))
            return _Reply(
                405,
                _api_error("MethodNotAllowed", f"Method {method} is not allowed on {path}; use {allowed}."),
                {"Allow": allowed},
            )
        return handler()


def _json_object(body: bytes) -> dict[str, JSON] | None:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    simulator: SensorDataSimulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "SensorDataSimulator/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request logging to stderr."""

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        simulator = cast(_Server, self.server).simulator
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(_Reply(400, _api_error("BadRequest", "Malformed request body framing.")))
            return
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            reply = simulator._route(self.command, parts.path, headers, body, query)
        except Exception as err:  # a simulator bug must still answer something
            reply = _Reply(500, _api_error("InternalServerError", f"Simulator error: {err!r}"))
        if reply.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(reply)

    def _send(self, reply: _Reply) -> None:
        if reply.raw is not None:
            data = reply.raw
            content_type = reply.headers.get("Content-Type", "application/octet-stream")
        else:
            data = json.dumps(reply.payload).encode("utf-8")
            content_type = "application/json; charset=utf-8"
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            if name.lower() != "content-type":
                self.send_header(name, value)
        if data:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if not reply.trickle_s:
            self.wfile.write(data)
            return
        for index in range(len(data)):
            time.sleep(reply.trickle_s)
            try:
                self.wfile.write(data[index : index + 1])
            except OSError:  # the client gave up waiting: what a trickle fault is for
                self.close_connection = True
                return

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _creator_client(spec: str) -> SimClient:
    client_id, colon, client_secret = spec.partition(":")
    if not (client_id and colon and client_secret):
        raise argparse.ArgumentTypeError("expected ID:SECRET")
    return SimClient(client_id, client_secret, frozenset({IOT_CREATOR_ROLE}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Sensor Data API simulator with an IMS-style token endpoint."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    add_rate_limit_arguments(parser)
    parser.add_argument("--token-ttl", type=int, default=3600, help="token lifetime in seconds")
    parser.add_argument(
        "--client",
        action="append",
        default=[],
        type=_creator_client,
        metavar="ID:SECRET",
        help="another client with the IoT Creator role (repeatable)",
    )
    args = parser.parse_args(argv)
    limit = rate_limit_from_args(args)
    extra: list[SimClient] = args.client
    sim = SensorDataSimulator(
        args.host, args.port, token_ttl_seconds=args.token_ttl, clients=default_clients() + extra
    ).start()
    sim.configure(tier=limit.tier, rate_limit_per_minute=limit.per_minute, rate_limit_per_hour=limit.per_hour)
    print(f"Sensor Data simulator on {sim.url}", flush=True)
    print(f"  api_base_url: {sim.api_base_url}", flush=True)
    print(f"  token_url:    {sim.token_url}", flush=True)
    print(f"  state:        {sim.url}/_sim/state", flush=True)
    print(f"  client:       {DEMO_CLIENT_ID} / {DEMO_CLIENT_SECRET} (IoT Creator)", flush=True)
    print(f"  rate limit:   {limit.describe()}", flush=True)
    print("Ctrl-C stops it.", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def _json_or_none(body: bytes) -> JSON:
    """A body's JSON, or None for one that is not JSON (the checks then refuse it as not a list
    of observations, with the API's 422, as they refuse JSON null)."""
    try:
        parsed: JSON = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return parsed
