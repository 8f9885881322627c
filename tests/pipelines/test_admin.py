"""Operators' admin pages: lists filter and search without a query per row, show staff only what they may read,
grant through the services, and leave executions to the engine."""

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import AuditEvent
from apps.accounts.permissions import can
from apps.accounts.services import do_grant
from apps.pipelines.models import Application, Execution
from apps.pipelines.services import do_save_pipeline, do_start_execution


@pytest.fixture
def executions(db):
    stages = [{"refId": "1", "name": "W", "type": "wait", "waitTime": 1}]
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "deliver", "stages": stages})
    return [do_start_execution(pipeline, user="alice") for _ in range(5)]


def list_queries(admin_client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_execution_list_costs_the_same_queries_for_few_or_many_rows(admin_client, executions):
    few = list_queries(admin_client, "/admin/pipelines/execution/?status__exact=NOT_STARTED")
    pipeline = executions[0].pipeline
    for _ in range(20):
        do_start_execution(pipeline)
    assert list_queries(admin_client, "/admin/pipelines/execution/?status__exact=NOT_STARTED") == few


def test_an_operator_finds_an_execution_by_id_and_opens_it(admin_client, executions):
    wanted = executions[2]
    response = admin_client.get("/admin/pipelines/execution/", {"q": str(wanted.id)})
    assert response.status_code == 200
    assert str(wanted.id) in response.content.decode()
    assert str(executions[0].id) not in response.content.decode()

    detail = admin_client.get(f"/admin/pipelines/execution/{wanted.id}/change/")
    assert detail.status_code == 200
    assert "alice" in detail.content.decode()


@pytest.mark.parametrize(
    "url",
    [
        "/admin/pipelines/application/",
        "/admin/pipelines/pipeline/",
        "/admin/pipelines/pipelinerevision/",
        "/admin/pipelines/stageexecution/",
        "/admin/pipelines/execution/?application__id__exact=1",
    ],
)
def test_every_list_page_opens(admin_client, executions, url):
    assert admin_client.get(url).status_code == 200


# --- Staff who are not superusers, and grants made here ------------------------------------------

VIEW_EVERYTHING = ("view_application", "change_application", "delete_application", "add_application",
                   "view_pipeline", "delete_pipeline", "view_execution", "add_execution", "change_execution",
                   "delete_execution", "view_stageexecution", "add_stageexecution", "change_stageexecution",
                   "view_auditevent")


@pytest.fixture
def world(db):
    """shop and secret, one execution each; olga is staff with every model permission, and reads only shop."""
    stages = [{"refId": "1", "name": "W", "type": "wait", "waitTime": 1}]
    shop, _ = do_save_pipeline({"application": "shop", "name": "deliver", "stages": stages})
    secret, _ = do_save_pipeline({"application": "secret", "name": "launch", "stages": stages})
    olga = User.objects.create_user("olga", is_staff=True)
    olga.user_permissions.set(Permission.objects.filter(codename__in=VIEW_EVERYTHING))
    do_grant(shop.application, olga, "read", actor="setup")
    return SimpleNamespace(shop=shop, secret=secret, olga=olga, bob=User.objects.create_user("bob"),
                           shop_run=do_start_execution(shop, user="alice"),
                           secret_run=do_start_execution(secret, user="alice"))


def staff_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_staff_see_only_the_applications_and_executions_they_may_read(world):
    client = staff_client(world.olga)
    pages = {
        "/admin/pipelines/application/": ("shop", "secret"),
        "/admin/pipelines/pipeline/": ("deliver", "launch"),
        "/admin/pipelines/execution/": (str(world.shop_run.id), str(world.secret_run.id)),
        "/admin/pipelines/stageexecution/": (str(world.shop_run.id), str(world.secret_run.id)),
    }
    for url, (shown, hidden) in pages.items():
        body = client.get(url).content.decode()
        assert shown in body and hidden not in body, url
    assert client.get(f"/admin/pipelines/execution/{world.secret_run.id}/change/").status_code == 302  # not found
    assert client.get(f"/admin/pipelines/execution/{world.shop_run.id}/change/").status_code == 200


def test_staff_see_only_the_audit_events_of_applications_they_may_read(world):
    body = staff_client(world.olga).get("/admin/accounts/auditevent/").content.decode()
    assert "deliver" in body or "shop" in body
    assert "secret" not in body


def test_nobody_adds_or_edits_an_execution_or_a_stage_by_hand(world, admin_client):
    stage = world.shop_run.stages.get()
    for client in (staff_client(world.olga), admin_client):
        assert client.get("/admin/pipelines/execution/add/").status_code == 403
        assert client.get("/admin/pipelines/stageexecution/add/").status_code == 403
        edit = client.post(f"/admin/pipelines/stageexecution/{stage.id}/change/", {"status": "SUCCEEDED"})
        assert edit.status_code == 403
        assert client.post(f"/admin/pipelines/execution/{world.shop_run.id}/change/",
                           {"status": "SUCCEEDED"}).status_code == 403
    stage.refresh_from_db()
    assert stage.status == "NOT_STARTED"


def test_only_a_finished_execution_may_be_deleted(world, admin_client):
    url = f"/admin/pipelines/execution/{world.shop_run.id}/delete/"
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    Execution.objects.filter(id=world.shop_run.id).update(status="SUCCEEDED")
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert not Execution.objects.filter(id=world.shop_run.id).exists()


def grant_page(application, user) -> str:
    return f"/admin/pipelines/application/{application.pk}/permissions/user-manage/{user.pk}/"


def test_a_grant_made_in_the_admin_is_audited(world, admin_client):
    shop = world.shop.application
    response = admin_client.post(grant_page(shop, world.bob), {"permissions": ["view_application",
                                                                                "execute_application"]})
    assert response.status_code == 302
    assert can(world.bob, "execute", shop)
    events = AuditEvent.objects.filter(action="permission.granted", details__grantee="bob")
    assert sorted(event.details["action"] for event in events) == ["execute", "read"]
    assert {(event.source, event.actor, event.application_id) for event in events} == {("admin", "admin", shop.pk)}

    admin_client.post(grant_page(shop, world.bob), {"permissions": ["view_application"]})
    revoked = AuditEvent.objects.get(action="permission.revoked", details__grantee="bob")
    assert revoked.details["action"] == "execute" and not can(world.bob, "execute", shop)


def test_the_grant_page_offers_only_the_applications_actions(world, admin_client):
    body = admin_client.get(grant_page(world.shop.application, world.bob)).content.decode()
    assert 'value="execute_application"' in body
    assert 'value="delete_application"' not in body and 'value="add_application"' not in body


def test_a_reader_on_the_staff_may_not_grant(world):
    client = staff_client(world.olga)
    shop = world.shop.application
    assert client.get(f"/admin/pipelines/application/{shop.pk}/permissions/").status_code == 403
    assert client.post(grant_page(shop, world.bob), {"permissions": ["view_application"]}).status_code == 403
    assert not can(world.bob, "read", shop)


def test_a_writer_on_the_staff_may_not_grant_themselves_execute_but_an_owner_may_grant(world):
    shop = world.shop.application
    do_grant(shop, world.olga, "write", actor="setup")
    client = staff_client(world.olga)
    wanted = {"permissions": ["view_application", "change_application", "execute_application"]}
    assert client.post(grant_page(shop, world.olga), wanted).status_code == 403
    assert not can(world.olga, "execute", shop)

    do_grant(shop, world.olga, "manage", actor="setup")
    assert client.post(grant_page(shop, world.bob), {"permissions": ["view_application"]}).status_code == 302
    assert can(world.bob, "read", shop)


def test_an_application_changed_in_the_admin_is_changed_through_the_service(world, admin_client):
    shop = world.shop.application
    response = admin_client.post(f"/admin/pipelines/application/{shop.pk}/change/",
                                 {"owner": "team-shop", "description": "the shop"})
    assert response.status_code == 302
    shop.refresh_from_db()
    assert shop.owner == "team-shop" and shop.name == "shop"
    assert AuditEvent.objects.get(action="application.updated").source == "admin"

    refused = admin_client.post(f"/admin/pipelines/application/{shop.pk}/delete/", {"post": "yes"}, follow=True)
    assert "still has 1 pipeline" in refused.content.decode()
    assert Application.objects.filter(pk=shop.pk).exists()


def test_a_pipeline_deleted_in_the_admin_is_audited(world, admin_client):
    response = admin_client.post(f"/admin/pipelines/pipeline/{world.secret.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="pipeline.deleted")
    assert (event.source, event.details["name"]) == ("admin", "launch")


def test_an_application_added_in_the_admin_gives_its_staff_creator_every_action(world):
    client = staff_client(world.olga)
    response = client.post("/admin/pipelines/application/add/", {"name": "cart", "owner": "", "description": ""})
    assert response.status_code == 302
    cart = Application.objects.get(name="cart")
    assert all(can(world.olga, action, cart) for action in ("read", "write", "execute"))
    assert AuditEvent.objects.get(action="application.created").source == "admin"
    assert "cart" in client.get("/admin/pipelines/application/").content.decode()
