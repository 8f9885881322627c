"""Secrets in the admin: a write-only form, the names of readable applications, changes through the services."""

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from apps.accounts.models import AuditEvent
from apps.accounts.services import do_grant
from apps.pipelines.models import Application, Secret
from apps.pipelines.secrets.services import do_set_secret
from apps.pipelines.secrets.store import secret_values

TOKEN, NEW_TOKEN = "tok-admin-0001", "tok-admin-0002"
SECRET_PERMISSIONS = ("view_secret", "add_secret", "change_secret", "delete_secret")


@pytest.fixture
def staff(db):
    """shop (olga writes) and vault (olga reads), each with a secret; olga is staff with the secret model's
    permissions."""
    shop, vault = Application.objects.create(name="shop"), Application.objects.create(name="vault")
    for application in (shop, vault):
        do_set_secret(application, "deploy-token", TOKEN, user="setup")
    olga = User.objects.create_user("olga", is_staff=True)
    olga.user_permissions.set(Permission.objects.filter(codename__in=SECRET_PERMISSIONS))
    do_grant(shop, olga, "write", actor="setup")
    do_grant(vault, olga, "read", actor="setup")
    client = Client()
    client.force_login(olga)
    return client, shop, vault


def test_no_admin_page_shows_a_value(staff):
    client, shop, vault = staff
    pages = ["/admin/pipelines/secret/", "/admin/pipelines/secret/add/",
             *(f"/admin/pipelines/secret/{secret.pk}/change/" for secret in Secret.objects.all())]

    bodies = [client.get(page) for page in pages]

    assert [response.status_code for response in bodies] == [200] * len(pages)
    assert not any(TOKEN in response.content.decode() for response in bodies)


def test_a_writer_replaces_a_value_through_the_service_audited(staff):
    client, shop, _ = staff
    secret = Secret.objects.get(application=shop)

    response = client.post(f"/admin/pipelines/secret/{secret.pk}/change/", {"value": NEW_TOKEN})

    assert response.status_code == 302
    assert secret_values(shop.pk, ["deploy-token"]) == {"deploy-token": NEW_TOKEN}
    event = AuditEvent.objects.filter(action="secret.set", actor="olga").get()
    assert event.source == "admin" and NEW_TOKEN not in str(event.details)


def test_a_reader_may_not_change_or_delete_and_a_new_secret_only_goes_where_one_writes(staff):
    client, shop, vault = staff
    secret = Secret.objects.get(application=vault)

    changed = client.post(f"/admin/pipelines/secret/{secret.pk}/change/", {"value": NEW_TOKEN})
    deleted = client.post(f"/admin/pipelines/secret/{secret.pk}/delete/", {"post": "yes"})
    added = client.post("/admin/pipelines/secret/add/", {"application": vault.pk, "name": "x", "value": NEW_TOKEN})

    assert (changed.status_code, deleted.status_code, added.status_code) == (403, 403, 200)
    assert "Select a valid choice" in added.content.decode()
    assert secret_values(vault.pk, ["deploy-token"]) == {"deploy-token": TOKEN}
    assert Secret.objects.filter(application=vault).count() == 1


def test_a_writer_adds_and_deletes_a_secret(staff):
    client, shop, _ = staff

    added = client.post("/admin/pipelines/secret/add/", {"application": shop.pk, "name": "registry",
                                                         "value": NEW_TOKEN})
    secret = Secret.objects.get(application=shop, name="registry")
    deleted = client.post(f"/admin/pipelines/secret/{secret.pk}/delete/", {"post": "yes"})

    assert (added.status_code, deleted.status_code) == (302, 302)
    assert not Secret.objects.filter(name="registry").exists()
    assert AuditEvent.objects.filter(action="secret.deleted", details={"name": "registry"}).exists()
