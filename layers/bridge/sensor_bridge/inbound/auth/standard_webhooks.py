"""The Standard Webhooks signature (HMAC-SHA256 over id, timestamp and body), checked with the
`standardwebhooks` package, and the source's own timestamp tolerance."""

from __future__ import annotations

import binascii
import time

from sensor_bridge.model.replies import RequestError
from sensor_bridge.model.request import WebhookRequest

SIGNATURE_HEADERS = frozenset({"webhook-id", "webhook-timestamp", "webhook-signature"})


def unauthorized(message: str, headers: dict[str, str] | None = None) -> RequestError:
    return RequestError(401, "Unauthorized", message, headers=headers)


def verify_signature(request: WebhookRequest, key: bytes, tolerance_seconds: int) -> None:
    """401 unless the request is signed with `key` (decoded and checked by `signing_key`)."""
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
    if not headers.keys() >= SIGNATURE_HEADERS:
        raise unauthorized("webhook-id, webhook-timestamp and webhook-signature headers are required")
    webhook = Webhook(key)  # bytes: taken as the key itself, not decoded again
    _check_timestamp(headers["webhook-timestamp"], tolerance_seconds)
    try:
        webhook.verify(request.body, headers, json_parse=False)
    except WebhookVerificationError as exc:
        raise unauthorized(f"signature verification failed: {exc}") from None
    except (ValueError, binascii.Error):
        # The package unpacks "v1,<base64>" without checking its shape: a garbled signature
        # (or a body that is not UTF-8) is the sender's mistake, not our crash.
        raise unauthorized("signature verification failed: malformed webhook-signature") from None


def _check_timestamp(value: str, tolerance_seconds: int) -> None:
    # standardwebhooks fixes its own tolerance at 5 minutes; a source may ask for a tighter one.
    try:
        stamp = int(value)
    except ValueError:
        raise unauthorized("webhook-timestamp is not a number") from None
    if abs(time.time() - stamp) > tolerance_seconds:
        raise unauthorized("webhook-timestamp is outside the allowed tolerance")
