"""What the trigger tests share: a pipeline with triggers, signing bodies, posting as a webhook sender would."""

from __future__ import annotations

import hashlib
import hmac
import json

from django.test import Client

from apps.pipelines.models import Application, Execution
from apps.pipelines.secrets.services import do_set_secret
from apps.pipelines.services import do_save_pipeline

WAIT = {"refId": "1", "name": "Wait", "type": "wait", "waitTime": 600}
SECRET = "s3cret-hook-key"


def save_with_triggers(triggers, application="shop", name="deliver", secret=SECRET, **extra):
    """Save ``application/name`` with the triggers (and a ``hook-key`` secret for them to reference)."""
    app, _ = Application.objects.get_or_create(name=application)
    if secret:
        do_set_secret(app, "hook-key", secret, user="setup")
    pipeline, _ = do_save_pipeline(
        {"application": application, "name": name, "stages": [WAIT], "triggers": triggers, **extra})
    return pipeline


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(path: str, payload, headers: dict | None = None, client: Client | None = None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return (client or Client()).post(path, body, content_type="application/json", headers=headers or {})


def executions_of(pipeline) -> list[Execution]:
    return list(Execution.objects.filter(pipeline=pipeline).order_by("created_at"))
