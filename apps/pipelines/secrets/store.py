"""Looking secrets up for a stage that uses them: by owner and name, decrypted, in the worker only.

The owner is an application today. A deployment account will own secrets
the same way: a nullable ``account`` foreign key next to ``application`` on
:class:`~apps.pipelines.models.Secret` (exactly one of the two set, one unique
name per owner), and :func:`secret_values` taking the owners in the order a
stage asks them — the account it deploys to, then its application — the
first owner holding a name giving its value.
"""

from __future__ import annotations

from apps.pipelines.models import Application, Secret
from apps.pipelines.secrets import crypto


class SecretMissing(LookupError):
    """A stage names a secret its application does not have (deleted since the pipeline was saved)."""


def secret_values(application_id: int, names) -> dict[str, str]:
    """The values of the named secrets of an application, decrypted; SecretMissing or SecretsUnavailable
    (naming the secret, never showing a value) when one cannot be had."""
    names = set(names)
    rows = dict(Secret.objects.filter(application_id=application_id, name__in=names).values_list("name", "ciphertext"))
    missing = sorted(names - set(rows))
    if missing:
        application = Application.objects.filter(pk=application_id).values_list("name", flat=True).first()
        raise SecretMissing(f"application {application!r} has no secret {missing[0]!r} (deleted since the "
                            "pipeline was saved?); set it again and restart the stage")
    values = {}
    for name, ciphertext in rows.items():
        try:
            values[name] = crypto.decrypt(ciphertext)
        except crypto.SecretsUnavailable as error:
            raise crypto.SecretsUnavailable(f"secret {name!r} cannot be used: {error}") from None
    return values
