"""How strong a webhook secret must be before anything is checked against it.

A secret too short to resist guessing is a deployment mistake the platform cannot fix: the
functions answer its source 503 SecretUnavailable (inbound.auth) and `python -m
sensor_bridge.config check --secrets` names it (store.config_check); both read the rules here.
"""

from __future__ import annotations

import base64
import binascii

MIN_SECRET_CHARS = 16  # a shared header, query or Basic password value
# Standard Webhooks: the key (base64 after `whsec_`) is "between 24 bytes (192 bits) and 64
# bytes (512 bits)". The standardwebhooks package checks only that it is not empty, and decodes
# leniently: `whsec_ab` is a 1-byte key, forged after about a hundred guesses.
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64
_PREFIX = "whsec_"


class WeakSecret(ValueError):
    """The secret's value cannot be used; the message says why, never the value."""


def strong_shared_secret(value: str) -> str:
    """`value` if it has at least MIN_SECRET_CHARS characters; WeakSecret otherwise."""
    if len(value) < MIN_SECRET_CHARS:
        raise WeakSecret(f"is shorter than {MIN_SECRET_CHARS} characters")
    return value


def signing_key(value: str) -> bytes:
    """The key of a `whsec_<base64>` secret, decoded strictly; WeakSecret unless 24-64 bytes."""
    encoded = value.removeprefix(_PREFIX)
    try:
        # Padding may be left off (the spec's own examples do); any other non-alphabet byte may not.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise WeakSecret("is not whsec_ followed by base64") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise WeakSecret(f"decodes to a {len(key)}-byte key, not {MIN_KEY_BYTES}-{MAX_KEY_BYTES} bytes")
    return key


def weakness(auth_type: str, value: str) -> str | None:
    """Why `value` cannot serve as the secret of an `auth_type` source; None when it can."""
    try:
        if auth_type == "standard-webhooks":
            signing_key(value)
        else:
            strong_shared_secret(value)
    except WeakSecret as exc:
        return str(exc)
    return None
