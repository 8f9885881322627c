"""Inbound events are readable per application, in the API and on a page, and the editor shows each trigger's state."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from apps.accounts.services import do_grant
from tests.scenarios import client_for
from tests.triggers.helpers import post, save_with_triggers

pytestmark = pytest.mark.django_db


def hook(source):
    return {"type": "webhook", "enabled": True, "source": source}


@pytest.fixture
def world():
    shop = save_with_triggers([hook("shop-hooks")], secret=None)
    blog = save_with_triggers([hook("blog-hooks")], application="blog", name="publish", secret=None)
    post("/webhooks/webhook/shop-hooks", {"n": 1})
    post("/webhooks/webhook/blog-hooks", {"n": 2})
    bob = User.objects.create_user("bob")
    do_grant(shop.application, bob, "read", actor="setup")
    return shop, blog, bob


def test_a_reader_lists_the_events_of_the_applications_they_read_only(world):
    shop, _, bob = world
    response = client_for(bob).get("/api/trigger-events/")
    assert response.status_code == 200
    [match] = response.json()["results"]
    assert match["application"] == "shop"
    assert match["event"]["source"] == "webhook/shop-hooks"
    assert match["event"]["outcome"] == "started"
    assert match["execution"]
    assert len(match["event"]["body_sha256"]) == 64


def test_an_outsider_sees_no_event(world, client):
    charlie = User.objects.create_user("charlie")
    assert client_for(charlie).get("/api/trigger-events/").json()["results"] == []
    client.force_login(charlie)
    assert client.get("/applications/shop/triggers/").status_code == 404


def test_the_list_costs_the_same_queries_for_one_event_or_many(world, django_assert_max_num_queries):
    from tests.scenarios import count_queries

    shop, _, bob = world
    client = client_for(bob)
    few = count_queries(client, "/api/trigger-events/?application=shop")
    for number in range(10):
        post("/webhooks/webhook/shop-hooks", {"n": number})
    assert count_queries(client, "/api/trigger-events/?application=shop") == few


def test_the_page_shows_each_trigger_with_when_it_last_fired_and_the_events(world, client):
    shop, _, bob = world
    client.force_login(bob)
    page = client.get("/applications/shop/triggers/").content.decode()
    assert "webhook" in page and "shop-hooks" in page and "started" in page

    editor = client.get(f"/pipelines/{shop.id}/edit/").content.decode()
    assert "last fired" in editor


def test_events_older_than_the_retention_are_pruned(world, settings):
    from datetime import timedelta

    from django.utils import timezone

    from apps.triggers.jobs import prune_inbound_events
    from apps.triggers.models import InboundEvent, TriggerMatch

    settings.TRIGGER_EVENT_RETENTION_DAYS = 7
    old = InboundEvent.objects.order_by("id").first()
    InboundEvent.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(days=8))

    assert prune_inbound_events() == 2  # the event and its match
    assert not InboundEvent.objects.filter(pk=old.pk).exists()
    assert InboundEvent.objects.count() == 1 and TriggerMatch.objects.count() == 1
