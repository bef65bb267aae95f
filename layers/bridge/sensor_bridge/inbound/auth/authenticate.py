"""Authenticating a source's webhook before its body is parsed. Every comparison is constant-time."""

from __future__ import annotations

import base64
import binascii
import hmac

from sensor_bridge.model.config import BasicAuth, HeaderAuth, NoAuth, QueryAuth, Source, StandardWebhooksAuth
from sensor_bridge.model.replies import RequestError
from sensor_bridge.model.request import WebhookRequest
from sensor_bridge.store.secrets import SecretUnavailable, webhook_secret

CHALLENGE = {"WWW-Authenticate": 'Basic realm="sensor-bridge"'}


def _unauthorized(message: str, headers: dict[str, str] | None = None) -> RequestError:
    return RequestError(401, "Unauthorized", message, headers=headers)


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _expected(name: str) -> str:
    try:
        value = webhook_secret(name)
    except SecretUnavailable as exc:
        # Our outage, not the caller's mistake: 503 so that the platform sends again.
        raise RequestError(503, "SecretUnavailable", "the bridge cannot read its webhook secrets") from exc
    if not value:
        raise RequestError(503, "SecretUnavailable", f"webhook secret {name!r} is not set")
    return value


def authenticate(request: WebhookRequest, source: Source) -> None:
    auth = source.auth
    if isinstance(auth, NoAuth):
        return
    if isinstance(auth, HeaderAuth):
        if not _same(request.header(auth.header), auth.prefix + _expected(auth.secret)):
            raise _unauthorized(f"header {auth.header} is missing or wrong")
    elif isinstance(auth, BasicAuth):
        if not _basic_ok(request.header("authorization"), auth.username, _expected(auth.secret)):
            raise _unauthorized("basic credentials are missing or wrong", CHALLENGE)
    elif isinstance(auth, QueryAuth):
        if not _same(request.query.get(auth.parameter), _expected(auth.secret)):
            raise _unauthorized(f"query parameter {auth.parameter} is missing or wrong")
    elif isinstance(auth, StandardWebhooksAuth):
        _verify_standard_webhook(request, _expected(auth.secret), auth.tolerance_seconds)


def _basic_ok(header: str | None, username: str, password: str) -> bool:
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, _, given = decoded.partition(":")
    # Evaluate both comparisons so timing does not tell which one failed.
    return _same(user, username) & _same(given, password)


def _verify_standard_webhook(request: WebhookRequest, secret: str, tolerance_seconds: int) -> None:
    from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

    headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
    if not {"webhook-id", "webhook-timestamp", "webhook-signature"} <= headers.keys():
        raise _unauthorized("webhook-id, webhook-timestamp and webhook-signature headers are required")
    try:
        webhook = Webhook(secret)
    except (binascii.Error, ValueError, EmptyWebhookSecretError) as exc:
        raise RequestError(503, "SecretUnavailable", "the source's signing secret is malformed") from exc
    _check_timestamp(headers["webhook-timestamp"], tolerance_seconds)
    try:
        webhook.verify(request.body, headers, json_parse=False)
    except WebhookVerificationError as exc:
        raise _unauthorized(f"signature verification failed: {exc}") from None
    except (ValueError, binascii.Error):
        # The package unpacks "v1,<base64>" without checking its shape: a garbled signature
        # (or a body that is not UTF-8) is the sender's mistake, not our crash.
        raise _unauthorized("signature verification failed: malformed webhook-signature") from None


def _check_timestamp(value: str, tolerance_seconds: int) -> None:
    # standardwebhooks fixes its own tolerance at 5 minutes; a source may ask for a tighter one.
    import time

    try:
        stamp = int(value)
    except ValueError:
        raise _unauthorized("webhook-timestamp is not a number") from None
    if abs(time.time() - stamp) > tolerance_seconds:
        raise _unauthorized("webhook-timestamp is outside the allowed tolerance")
