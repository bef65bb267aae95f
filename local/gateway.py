"""A loopback HTTP server that plays API Gateway's HTTP API: it serves template.yaml's routes to
the real handlers as payload-format-2.0 events."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local.apigw import LambdaContext, http_api_event
from local.template_routes import Handler, Route

MAX_BODY = 10 * 1024 * 1024  # API Gateway's own payload limit


class Gateway:
    def __init__(self, routes: list[tuple[Route, Handler]], host: str = "127.0.0.1", port: int = 0) -> None:
        self.routes = routes
        self._lock = threading.Lock()  # one invocation at a time, like one warm Lambda instance
        gateway = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
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

        self._server = ThreadingHTTPServer((host, port), _Handler)
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
            return route_request(self.routes, method, raw_path, headers, body)


def route_request(
    routes: list[tuple[Route, Handler]], method: str, raw_path: str, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    """What API Gateway does with one request: find the route, invoke its function with a v2 event."""
    parts = urlsplit(raw_path)
    for route, handler in routes:
        params = route.match(method, parts.path)
        if params is None:
            continue
        event = http_api_event(
            method, route.route_key, parts.path, params, headers, dict(parse_qsl(parts.query)), body
        )
        return _from_lambda_result(handler(event, LambdaContext(route.function)))
    # API Gateway's own answer for a route that is not declared.
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
