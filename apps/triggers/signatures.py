"""Checking what a webhook sender proves: an HMAC of the body or a shared token, always in constant time."""

from __future__ import annotations

import hashlib
import hmac


def hmac_sha256_matches(secret: str, body: bytes, header: str) -> bool:
    """Whether ``header`` is ``sha256=<hex HMAC-SHA256 of body with secret>`` (GitHub's and Bitbucket's form)."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().lower().encode())


def token_matches(sent: str, secret: str) -> bool:
    """Whether a shared token sent in a header is the secret (compared in constant time)."""
    return hmac.compare_digest(sent.encode(), secret.encode())


def bearer_matches(authorization: str, token: str) -> bool:
    """Whether an ``Authorization: Bearer <token>`` header carries ``token`` (never, when no token is set)."""
    scheme, _, sent = authorization.partition(" ")
    return bool(token) and scheme.lower() == "bearer" and token_matches(sent.strip(), token)
