"""A loopback HTTP server that plays API Gateway's HTTP API: it serves template.yaml's routes to
the real handlers as payload-format-2.0 events.

As API Gateway does, it answers a function that crashed (or returned something that is not a
proxy result) with 500 `{"message": "Internal Server Error"}`; the traceback goes to the function
log (stdout, which the local stack sends to its log file), one line to stderr.
"""

from __future__ import annotations

import base64
import errno
import json
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypedDict, Unpack
from urllib.parse import parse_qsl, urlsplit

from local.apigw import HttpRequest, LambdaContext, http_api_event
from local.template_routes import Handler, Route

MAX_BODY = 10 * 1024 * 1024  # API Gateway's own payload limit
INTERNAL_ERROR = (500, {"Content-Type": "application/json"}, b'{"message":"Internal Server Error"}')


class PortInUse(OSError):
    """The gateway's port is taken; the message says so in one line."""


class Gateway:
    def __init__(
        self,
        routes: list[tuple[Route, Handler]],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        function_log: str = "the function log",
    ) -> None:
        self.routes = routes
        self.function_log = function_log
        self._lock = threading.Lock()  # one invocation at a time, like one warm Lambda instance
        gateway = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                try:
                    self._route()
                except Exception as exc:  # a bug of the gateway itself: still an answer, never a drop
                    print(f"gateway: {type(exc).__name__}: {exc}", file=sys.stderr)
                    self._reply(*INTERNAL_ERROR)

            def _route(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY:
                    self._reply(413, {}, b'{"message":"Request Entity Too Large"}')
                    return
                body = self.rfile.read(length) if length else b""
                status, headers, payload = gateway.invoke(
                    self.command, self.path, dict(self.headers.items()), body
                )
                self._reply(status, headers, payload)

            def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _serve

        try:
            self._server = ThreadingHTTPServer((host, port), _Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"port {port} on {host} is already in use: stop what holds it, or choose another "
                    "port (BRIDGE_PORT=..., --port)"
                ) from None
            raise
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Gateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def invoke(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            return route_request(self.routes, method, raw_path, headers, body, function_log=self.function_log)


class ContextOptions(TypedDict, total=False):
    """What a caller may set on the Lambda context instead of the template's values."""

    timeout_seconds: float


def route_request(
    routes: list[tuple[Route, Handler]],
    method: str,
    raw_path: str,
    headers: dict[str, str],
    body: bytes,
    *,
    function_log: str = "the function log",
    **context: Unpack[ContextOptions],
) -> tuple[int, dict[str, str], bytes]:
    """What API Gateway does with one request: find the route, invoke its function with a v2 event
    and a Lambda context (the template's timeout unless `timeout_seconds` is given)."""
    parts = urlsplit(raw_path)
    for route, handler in routes:
        params = route.match(method, parts.path)
        if params is None:
            continue
        request = HttpRequest(method, parts.path, headers, dict(parse_qsl(parts.query)), body)
        event = http_api_event(request, route.route_key, params)
        try:
            return _from_lambda_result(handler(event, LambdaContext(route.function, **context)))
        except Exception as exc:
            traceback.print_exc(file=sys.stdout)  # Lambda writes an uncaught error to the function log
            print(
                f"gateway: {route.function} failed on {method} {parts.path} ({type(exc).__name__}); "
                f"answered 500; traceback in {function_log}",
                file=sys.stderr,
            )
            return INTERNAL_ERROR
    # API Gateway's own answer when no route matches (the template declares $default: never).
    return 404, {"Content-Type": "application/json"}, b'{"message":"Not Found"}'


def _from_lambda_result(result: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = ", ".join(values)
    return int(result.get("statusCode", 200)), headers, payload


def decode_json(payload: bytes) -> Any:
    try:
        return json.loads(payload) if payload else None
    except ValueError:
        return payload.decode("utf-8", "replace")
