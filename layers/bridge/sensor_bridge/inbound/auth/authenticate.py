"""Which proof a source's webhook must carry, and the secret it is checked against."""

from __future__ import annotations

from sensor_bridge.inbound.auth.shared_secrets import basic_credentials_match, same
from sensor_bridge.inbound.auth.standard_webhooks import unauthorized, verify_signature
from sensor_bridge.model.config import Source
from sensor_bridge.model.replies import RequestError
from sensor_bridge.model.request import WebhookRequest
from sensor_bridge.model.secret_strength import WeakSecret, signing_key, strong_shared_secret
from sensor_bridge.model.source_auth import BasicAuth, HeaderAuth, NoAuth, QueryAuth, StandardWebhooksAuth
from sensor_bridge.store.secrets import SecretUnavailable, webhook_secret

CHALLENGE = {"WWW-Authenticate": 'Basic realm="sensor-bridge"'}


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
    """Raise a 401 RequestError unless the request carries the proof the source's `auth` names."""
    auth = source.auth
    if isinstance(auth, NoAuth):
        return
    try:
        if isinstance(auth, StandardWebhooksAuth):
            verify_signature(request, signing_key(_expected(auth.secret)), auth.tolerance_seconds)
            return
        expected = strong_shared_secret(_expected(auth.secret))
    except WeakSecret as exc:
        # Not the caller's mistake and not one it can fix: 503, and the log tells the operator.
        raise RequestError(
            503, "SecretUnavailable", f"webhook secret {auth.secret!r} {exc}: an operator must replace it"
        ) from None
    if isinstance(auth, HeaderAuth):
        if not same(request.header(auth.header), auth.prefix + expected):
            raise unauthorized(f"header {auth.header} is missing or wrong")
    elif isinstance(auth, BasicAuth):
        if not basic_credentials_match(request.header("authorization"), auth.username, expected):
            raise unauthorized("basic credentials are missing or wrong", CHALLENGE)
    elif isinstance(auth, QueryAuth) and not same(request.query.get(auth.parameter), expected):
        raise unauthorized(f"query parameter {auth.parameter} is missing or wrong")
