"""Application secrets: write-only values a webhook stage uses as ``${#secret('name')}``.

- ``crypto``: encryption at rest with Fernet keys from ``SECRETS_ENCRYPTION_KEYS``
  (MultiFernet: the first key encrypts, all decrypt; ``manage.py reencrypt_secrets``
  moves every value to the first key).
- ``references``: finding ``${#secret('name')}`` in a pipeline document and the
  rules for where it may be written (checked without the database).
- ``services``: setting, replacing and deleting a secret (write on the
  application, audited), and the save-time check that every referenced secret exists;
  ``store``: the values of named secrets, decrypted, for the worker (and how
  deployment accounts will own secrets); ``checks``: the system checks of the keys.
- ``redaction``: replacing secret values with ``***`` in what a stage stores,
  in error messages and in log records.
- ``resolution``: the worker's side: just before a webhook's request, the
  stage's secret-bearing fields are evaluated again from the stage's own
  definition with the values, and whatever the request returns is redacted.

When a stage starts, ``#secret('name')`` evaluates to its own reference text,
so the stored context keeps the reference and never the value.
"""
