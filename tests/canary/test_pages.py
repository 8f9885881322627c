"""The canary configs pages: readers see, writers add from the preset and edit, with the API's problems shown."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from apps.canary.models import CanaryConfig
from apps.canary.presets import HTTP_PRESET

pytestmark = pytest.mark.django_db
URL = "/applications/shop/canary-configs/"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_writer_adds_the_preset_unedited_and_a_reader_sees_it_but_no_form(people):
    alice, bob = signed_in(people["alice"]), signed_in(people["bob"])
    page = alice.get(URL)
    assert page.status_code == 200 and "http_requests_total" in page.content.decode()

    added = alice.post(URL, {"document": json.dumps(HTTP_PRESET)})

    config = CanaryConfig.objects.get()
    assert added.status_code == 302 and config.document == HTTP_PRESET
    listing = bob.get(URL).content.decode()
    assert 'data-config="http-error-rate-and-latency"' in listing and 'id="config-form"' not in listing
    assert bob.post(URL, {"document": json.dumps({**HTTP_PRESET, "name": "x"})}).status_code == 403
    assert signed_in(people["charlie"]).get(URL).status_code == 404


def test_an_edit_with_problems_shows_them_at_their_pointers_and_keeps_the_text(people):
    alice = signed_in(people["alice"])
    alice.post(URL, {"document": json.dumps(HTTP_PRESET)})
    config = CanaryConfig.objects.get()
    broken = {**HTTP_PRESET, "metrics": [{**HTTP_PRESET["metrics"][0], "analysisConfigurations": {
        "canary": {"direction": "sideways"}}}]}

    answer = alice.post(f"{URL}{config.pk}/", {"document": json.dumps(broken)})
    not_json = alice.post(f"{URL}{config.pk}/", {"document": "{nope"})

    html = answer.content.decode()
    assert answer.status_code == 400
    assert 'data-pointer="/metrics/0/analysisConfigurations/canary/direction"' in html
    assert 'data-pointer="/classifier/groupWeights/Latency"' in html and "sideways" in html
    assert not_json.status_code == 400 and "is not valid JSON" in not_json.content.decode()
    config.refresh_from_db()
    assert config.document == HTTP_PRESET
    saved = alice.post(f"{URL}{config.pk}/", {"document": json.dumps({**HTTP_PRESET, "description": "v2"})})
    assert saved.status_code == 302
    config.refresh_from_db()
    assert config.document["description"] == "v2"
    assert alice.post(f"{URL}{config.pk}/delete/").status_code == 302 and not CanaryConfig.objects.exists()
