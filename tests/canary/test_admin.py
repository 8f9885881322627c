"""Canary analysis in the admin: accounts saved through the services with write-only credentials; configs read only."""

from __future__ import annotations

import pytest

from apps.canary.models import PrometheusAccount
from apps.canary.presets import HTTP_PRESET
from apps.canary.services import do_save_config
from apps.deployments.credentials import decrypted
from apps.pipelines.models import Application

pytestmark = pytest.mark.django_db


def test_a_superuser_adds_a_metrics_account_whose_token_is_never_shown(admin_client):
    added = admin_client.post("/admin/canary/prometheusaccount/add/", {
        "name": "metrics", "url": "http://127.0.0.1:9090", "username": "", "new_bearer_token": "tok-admin-1"})
    refused = admin_client.post("/admin/canary/prometheusaccount/add/", {"name": "x", "url": "ftp://nowhere"})

    account = PrometheusAccount.objects.get()
    assert added.status_code == 302 and decrypted(account.bearer_token) == "tok-admin-1"
    assert refused.status_code == 200 and "url:" in refused.content.decode()
    page = admin_client.get(f"/admin/canary/prometheusaccount/{account.pk}/change/")
    assert page.status_code == 200 and b"tok-admin-1" not in page.content


def test_configs_and_analyses_open_and_cannot_be_changed_there(admin_client, people):
    config = do_save_config(Application.objects.get(name="shop"), HTTP_PRESET, actor="setup")

    assert admin_client.get("/admin/canary/canaryconfig/").status_code == 200
    assert admin_client.get("/admin/canary/canaryanalysis/").status_code == 200
    assert admin_client.get("/admin/canary/canaryconfig/add/").status_code == 403
    assert admin_client.post(f"/admin/canary/canaryconfig/{config.pk}/change/", {"name": "x"}).status_code == 403
