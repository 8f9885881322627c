"""System checks of secrets' configuration, shown when any process starts (``manage.py check``, the workers)."""

from django.conf import settings
from django.core import checks

from apps.pipelines.secrets import crypto


@checks.register(checks.Tags.security)
def encryption_key_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Say which key encrypts secrets when it is not one the operator set."""
    if settings.SECRETS_ENCRYPTION_KEYS:
        return []
    if crypto.uses_development_key():
        return [checks.Warning(
            "Secrets are encrypted with a development key derived from SECRET_KEY (DEBUG, no "
            "SECRETS_ENCRYPTION_KEYS); they cannot be read once SECRET_KEY or DEBUG changes.",
            hint="Set SECRETS_ENCRYPTION_KEYS to keep secrets you mean to keep.",
            id="pipelines.W001",
        )]
    return [checks.Warning(
        crypto.NO_KEY_MESSAGE + "; setting a secret is refused and a stage using one fails.",
        hint="Set SECRETS_ENCRYPTION_KEYS (see .env.example).",
        id="pipelines.W002",
    )]
