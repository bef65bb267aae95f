"""Shared-secret proofs: a header, HTTP Basic credentials or a query parameter equal to a secret."""

from __future__ import annotations

import base64
import binascii
import hmac


def same(given: str | None, expected: str) -> bool:
    """Constant-time equality; a missing value is never equal."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def basic_credentials_match(header: str | None, username: str, password: str) -> bool:
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, _, given = decoded.partition(":")
    # Evaluate both comparisons so timing does not tell which one failed.
    return same(user, username) & same(given, password)
