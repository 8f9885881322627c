"""The application's Secrets page: names to readers, the write-only form and Delete to writers."""

import pytest
from django.test import Client

from apps.accounts.models import AuditEvent
from apps.pipelines.models import Secret
from apps.pipelines.secrets.services import do_set_secret
from apps.pipelines.secrets.store import secret_values

pytestmark = pytest.mark.django_db

TOKEN, NEW_TOKEN = "tok-page-0001", "tok-page-0002"
URL = "/applications/shop/secrets/"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def with_secret(people, shop):
    do_set_secret(shop.application, "deploy-token", TOKEN, user="setup")
    return people


def test_a_reader_sees_the_names_and_references_but_no_form_and_no_value(with_secret):
    body = signed_in(with_secret["bob"]).get(URL).content.decode()

    assert "deploy-token" in body and "${#secret(&#x27;deploy-token&#x27;)}" in body
    assert TOKEN not in body
    assert 'id="secret-form"' not in body and 'data-action="delete-secret"' not in body


def test_a_reader_posting_anyway_is_refused(with_secret):
    response = signed_in(with_secret["bob"]).post(URL, {"name": "deploy-token", "value": NEW_TOKEN})
    deleting = signed_in(with_secret["bob"]).post(f"{URL}deploy-token/delete/")

    assert (response.status_code, deleting.status_code) == (403, 403)
    assert secret_values(Secret.objects.get().application_id, ["deploy-token"]) == {"deploy-token": TOKEN}


def test_someone_who_cannot_read_the_application_gets_404(with_secret):
    assert signed_in(with_secret["charlie"]).get(URL).status_code == 404


def test_a_writer_replaces_a_value_and_the_page_never_shows_it(with_secret):
    alice = signed_in(with_secret["alice"])

    response = alice.post(URL, {"name": "deploy-token", "value": NEW_TOKEN}, follow=True)

    body = response.content.decode()
    assert "Replaced the value of secret deploy-token." in body
    assert NEW_TOKEN not in body and TOKEN not in body
    assert secret_values(Secret.objects.get().application_id, ["deploy-token"]) == {"deploy-token": NEW_TOKEN}
    assert AuditEvent.objects.filter(action="secret.set", actor="alice", source="web").exists()


def test_a_bad_value_is_shown_at_its_field_and_nothing_is_written(with_secret):
    response = signed_in(with_secret["alice"]).post(URL, {"name": "other", "value": "abc"})

    assert response.status_code == 200
    assert 'data-error-for="value"' in response.content.decode()
    assert not Secret.objects.filter(name="other").exists()


def test_a_writer_deletes_a_secret(with_secret):
    response = signed_in(with_secret["alice"]).post(f"{URL}deploy-token/delete/", follow=True)

    assert "Deleted secret deploy-token." in response.content.decode()
    assert not Secret.objects.exists()
