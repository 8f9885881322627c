"""Encrypting secret values at rest: Fernet tokens under the keys of ``SECRETS_ENCRYPTION_KEYS``.

MultiFernet: the first key encrypts, every key decrypts; :func:`reencrypt`
moves a token to the first key. With no key configured, a development
machine (``DEBUG``) uses a key derived from ``SECRET_KEY`` and the system
check ``pipelines.W001`` (``check --deploy``) says so; a production one (no ``DEBUG``) refuses to
store or use a secret (:class:`SecretsUnavailable`) and ``pipelines.W002``
warns at start.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

NO_KEY_MESSAGE = (
    "SECRETS_ENCRYPTION_KEYS is not set: secrets can be neither stored nor used until it names a Fernet key"
)


class SecretsUnavailable(Exception):
    """Secrets cannot be encrypted or decrypted: no key configured, or a token no configured key opens."""


def development_key() -> bytes:
    """The key a DEBUG machine without SECRETS_ENCRYPTION_KEYS uses, derived from SECRET_KEY."""
    digest = hashlib.sha256(b"cdplatform secrets development key\0" + settings.SECRET_KEY.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def uses_development_key() -> bool:
    """Whether secrets are encrypted with the derived development key (started with DEBUG and no key)."""
    return not settings.SECRETS_ENCRYPTION_KEYS and settings.SECRETS_USE_DEVELOPMENT_KEY


def _keys() -> list[bytes]:
    if settings.SECRETS_ENCRYPTION_KEYS:
        return [key.encode() for key in settings.SECRETS_ENCRYPTION_KEYS]
    if settings.SECRETS_USE_DEVELOPMENT_KEY:
        return [development_key()]
    raise SecretsUnavailable(NO_KEY_MESSAGE)


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in _keys()])


def encrypt(value: str) -> str:
    """The value as a Fernet token (text), under the first key."""
    return _fernet().encrypt(value.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    """The value of a token; SecretsUnavailable when no configured key opens it."""
    return _opening(_fernet().decrypt, token).decode("utf-8")


def reencrypt(token: str) -> str:
    """The token re-encrypted under the first key (the same token's value); SecretsUnavailable if none opens it."""
    return _opening(_fernet().rotate, token).decode("ascii")


def _opening(operation: Callable[[bytes], bytes], token: str) -> bytes:
    """``operation`` (decrypt or rotate) on a stored token; SecretsUnavailable when no configured key opens it."""
    try:
        return operation(token.encode("ascii"))
    except InvalidToken:
        raise SecretsUnavailable(
            "no key of SECRETS_ENCRYPTION_KEYS decrypts it (was the key it was stored with removed?)"
        ) from None
