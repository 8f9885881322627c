"""Re-encrypt every stored secret with the first key of SECRETS_ENCRYPTION_KEYS (after adding a new key)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.pipelines.models import Secret
from apps.pipelines.secrets import crypto

BATCH = 200


class Command(BaseCommand):
    help = (
        "Re-encrypt every secret with the first key of SECRETS_ENCRYPTION_KEYS. Rotate a key by putting a new "
        "one first (keep the old one after it), running this, then removing the old key."
    )

    def handle(self, *args, **options):
        done, last_pk = 0, 0
        while True:
            with transaction.atomic():
                rows = list(Secret.objects.select_for_update().filter(pk__gt=last_pk).order_by("pk")[:BATCH])
                for secret in rows:
                    try:
                        secret.ciphertext = crypto.reencrypt(secret.ciphertext)
                    except crypto.SecretsUnavailable as error:
                        raise CommandError(f"secret {secret} cannot be re-encrypted: {error}") from None
                    # Neither updated_at nor updated_by: the value did not change.
                    Secret.objects.filter(pk=secret.pk).update(ciphertext=secret.ciphertext)
                    done += 1
            if len(rows) < BATCH:
                break
            last_pk = rows[-1].pk
        self.stdout.write(f"{done} secret(s) re-encrypted with the first key of SECRETS_ENCRYPTION_KEYS")
