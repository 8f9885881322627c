"""Account credentials at rest: Fernet tokens (apps/pipelines/secrets/crypto.py), opened only where they are used."""

from apps.pipelines.problems import InvalidDocument, Problem
from apps.pipelines.secrets import crypto


def encrypted(value: str, pointer: str) -> str:
    """The value as a token ("" for none); InvalidDocument at ``pointer`` when no key is configured."""
    if not value:
        return ""
    try:
        return crypto.encrypt(value)
    except crypto.SecretsUnavailable as error:
        raise InvalidDocument([Problem(pointer, str(error))]) from None


def decrypted(token: str) -> str:
    """A credential's value, in the worker only, just before it is used ("" for none)."""
    return crypto.decrypt(token) if token else ""
