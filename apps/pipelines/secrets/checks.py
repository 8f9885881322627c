"""System checks of secrets' configuration, shown when any process starts (``manage.py check``, the workers)."""

from django.conf import settings
from django.core import checks

from apps.pipelines.secrets import crypto


@checks.register(checks.Tags.security, deploy=True)
def development_key_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Say, in ``check --deploy``, that secrets use the development key (DEBUG, no key set).

    A deploy check only: in development the derived key is the expected
    default, and a warning on every command would be noise (and lands on
    stderr, where scripts read refusals).
    """
    if settings.SECRETS_ENCRYPTION_KEYS or not crypto.uses_development_key():
        return []
    return [checks.Warning(
        "Secrets are encrypted with a development key derived from SECRET_KEY (DEBUG, no "
        "SECRETS_ENCRYPTION_KEYS); they cannot be read once SECRET_KEY or DEBUG changes.",
        hint="Set SECRETS_ENCRYPTION_KEYS to keep secrets you mean to keep.",
        id="pipelines.W001",
    )]


@checks.register(checks.Tags.security)
def missing_key_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Say, whenever a process starts, that secrets cannot be stored or used: no DEBUG and no key."""
    if settings.SECRETS_ENCRYPTION_KEYS or crypto.uses_development_key():
        return []
    return [checks.Warning(
        crypto.NO_KEY_MESSAGE + "; setting a secret is refused and a stage using one fails.",
        hint="Set SECRETS_ENCRYPTION_KEYS (see .env.example).",
        id="pipelines.W002",
    )]
