"""Bearer tokens for the Sensor Data API: IMS client credentials, cached until shortly before expiry.

The credentials secret holds either `{"client_id", "client_secret", "scope"?}` (tokens are fetched
from IMS) or `{"access_token"}` (a static token, for trials).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

from sensor_bridge.runtime.budget import call_seconds
from sensor_bridge.runtime.http import post_within
from sensor_bridge.runtime.process import on_reset
from sensor_bridge.runtime.settings import settings
from sensor_bridge.store.secrets import get_json_secret

DEFAULT_SCOPE = "itwin-platform"
# Refresh this long before expiry so a token never expires between our check and the API's.
EXPIRY_MARGIN_SECONDS = 120.0


class TokenUnavailable(RuntimeError):
    """IMS refused or could not be reached. The message never carries a secret or token."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class CredentialsRefused(TokenUnavailable):
    """IMS answered that the client credentials are wrong (e.g. `invalid_client`)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float  # monotonic


class TokenProvider:
    def __init__(self) -> None:
        self._token: _Token | None = None
        self._lock = threading.Lock()

    def get(self) -> str:
        with self._lock:
            token = self._token
            if token is None or time.monotonic() >= token.expires_at - EXPIRY_MARGIN_SECONDS:
                token = self._token = self._fetch()
            return token.value

    def invalidate(self, rejected: str | None = None) -> None:
        """Forget the cached token (the API answered 401 to it)."""
        with self._lock:
            if rejected is None or (self._token is not None and self._token.value == rejected):
                self._token = None

    def _fetch(self) -> _Token:
        secret_id = settings().credentials_secret_id
        try:
            return _token_for(get_json_secret(secret_id), secret_id)
        except CredentialsRefused:
            # The client secret may have been rotated since we cached it: read it afresh, once.
            return _token_for(get_json_secret(secret_id, force_fetch=True), secret_id)


def _token_for(credentials: dict[str, object], secret_id: str) -> _Token:
    s = settings()
    if credentials.get("access_token"):
        # A static token: its lifetime is unknown, so keep it until the API rejects it.
        return _Token(str(credentials["access_token"]), float("inf"))
    if not credentials.get("client_id") or not credentials.get("client_secret"):
        raise TokenUnavailable(
            f"secret {secret_id!r} needs client_id and client_secret (or access_token)",
            retryable=False,
        )
    form = {
        "grant_type": "client_credentials",
        "client_id": str(credentials["client_id"]),
        "client_secret": str(credentials["client_secret"]),
        "scope": str(credentials.get("scope") or DEFAULT_SCOPE),
    }
    started = time.monotonic()
    try:
        answer = post_within(s.token_url, call_seconds(s.api_timeout_seconds), data=form)
    except httpx.HTTPError as exc:
        raise TokenUnavailable(f"token endpoint unreachable: {type(exc).__name__}", retryable=True) from None
    if answer.status_code >= 500 or answer.status_code == 429:
        raise TokenUnavailable(f"token endpoint answered {answer.status_code}", retryable=True)
    if answer.status_code != 200:
        # OAuth2 error codes (invalid_client, invalid_scope) are safe to show; the body is not echoed.
        code = _oauth_error(answer)
        raise CredentialsRefused(f"token endpoint refused the credentials: {code}")
    try:
        payload = answer.json()
        value = str(payload["access_token"])
        lifetime = float(payload.get("expires_in", 3600))
    except (ValueError, KeyError, TypeError):
        raise TokenUnavailable("token endpoint answered without an access_token", retryable=True) from None
    return _Token(value, started + lifetime)


def _oauth_error(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("error", answer.status_code))
    except ValueError:
        return str(answer.status_code)


token_provider = TokenProvider()
on_reset(token_provider.invalidate)
