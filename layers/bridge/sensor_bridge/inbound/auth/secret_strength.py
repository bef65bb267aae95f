"""How strong a webhook secret must be before the bridge checks anything against it.

A secret too short to resist guessing is a deployment mistake the platform cannot fix: the
request is answered 503 SecretUnavailable (and logged for an operator), never checked against it.
"""

from __future__ import annotations

import base64
import binascii

from sensor_bridge.model.replies import RequestError

MIN_SECRET_CHARS = 16  # a shared header, query or Basic password value
# Standard Webhooks: the key (base64 after `whsec_`) is "between 24 bytes (192 bits) and 64
# bytes (512 bits)". The standardwebhooks package checks only that it is not empty, and decodes
# leniently: `whsec_ab` is a 1-byte key, forged after about a hundred guesses.
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64
_PREFIX = "whsec_"


def _weak(name: str, why: str) -> RequestError:
    return RequestError(
        503, "SecretUnavailable", f"webhook secret {name!r} {why}: an operator must replace it"
    )


def strong_shared_secret(name: str, value: str) -> str:
    """`value` if it has at least MIN_SECRET_CHARS characters; 503 otherwise."""
    if len(value) < MIN_SECRET_CHARS:
        raise _weak(name, f"is shorter than {MIN_SECRET_CHARS} characters")
    return value


def signing_key(name: str, value: str) -> bytes:
    """The key of a `whsec_<base64>` secret, decoded strictly; 503 unless it is 24-64 bytes."""
    encoded = value.removeprefix(_PREFIX)
    try:
        # Padding may be left off (the spec's own examples do); any other non-alphabet byte may not.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _weak(name, "is not whsec_ followed by base64") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise _weak(name, f"decodes to a {len(key)}-byte key, not {MIN_KEY_BYTES}-{MAX_KEY_BYTES} bytes")
    return key
