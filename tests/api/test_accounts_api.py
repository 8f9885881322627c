"""The accounts API: personal tokens, service accounts and their tokens, application grants, the audit log."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.audit import Actor, record
from apps.accounts.models import ApiToken, AuditEvent, ServiceAccount
from apps.accounts.permissions import READ, PermissionRefused, can
from apps.accounts.services import do_create_token, do_grant
from apps.pipelines.services import do_save_pipeline
from tests.scenarios import client_for, pointers

pytestmark = pytest.mark.django_db

TEAM = "release-managers"


@pytest.fixture
def shop():
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "deliver", "stages": []})
    return pipeline.application


@pytest.fixture
def blog():
    pipeline, _ = do_save_pipeline({"application": "blog", "name": "publish", "stages": []})
    return pipeline.application


@pytest.fixture
def people(shop):
    """alice owns shop (write, execute, manage), bob reads it, charlie has no grants, dave executes, in the team."""
    users = {name: User.objects.create_user(name) for name in ("alice", "bob", "charlie", "dave")}
    users["root"] = User.objects.create_superuser("root")
    do_grant(shop, users["alice"], "write", actor="setup")
    do_grant(shop, users["alice"], "execute", actor="setup")
    do_grant(shop, users["alice"], "manage", actor="setup")
    do_grant(shop, users["bob"], "read", actor="setup")
    do_grant(shop, users["dave"], "execute", actor="setup")
    users["dave"].groups.add(Group.objects.create(name=TEAM))
    return users


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


# --- Tokens -------------------------------------------------------------------------------------


def test_a_new_token_is_shown_once_and_then_only_by_its_prefix(people):
    client = client_for(people["alice"])

    created = client.post("/api/tokens/", {"name": "laptop"}, format="json")
    listed = client.get("/api/tokens/")

    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith(f"cdp_{created.json()['prefix']}_")
    [item] = listed.json()["results"]
    assert set(item) == {"id", "name", "prefix", "createdAt", "expiresAt", "lastUsedAt", "revokedAt"}
    assert token not in str(listed.json())
    assert ApiToken.objects.get().key_hash not in str(listed.json())
    assert AuditEvent.objects.filter(action="token.created", actor="alice", source="api").exists()


def test_a_token_authenticates_and_records_its_last_use(people):
    row, token = do_create_token(people["alice"], "ci")

    response = bearer(token).get("/api/tokens/")

    assert response.status_code == 200
    assert response.json()["results"][0]["name"] == "ci"
    row.refresh_from_db()
    assert row.last_used_at is not None


def test_a_revoked_token_is_401(people):
    client = client_for(people["alice"])
    token = client.post("/api/tokens/", {"name": "old"}, format="json").json()

    revoked = client.delete(f"/api/tokens/{token['id']}/")
    response = bearer(token["token"]).get("/api/tokens/")

    assert revoked.status_code == 204
    assert ApiToken.objects.get(id=token["id"]).revoked_at is not None
    assert client.get("/api/tokens/").json()["results"][0]["revokedAt"] is not None
    assert response.status_code == 401
    assert response.json()["errors"][0]["message"] == "Invalid, expired or revoked token."
    assert AuditEvent.objects.filter(action="token.revoked", object_id=str(token["id"])).count() == 1


def test_an_expired_token_is_401(people):
    row, token = do_create_token(people["alice"], "short", expires_at=timezone.now() + timedelta(hours=1))
    ApiToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert bearer(token).get("/api/tokens/").status_code == 401


def test_a_malformed_or_unknown_token_is_401(people):
    assert bearer("nonsense").get("/api/tokens/").status_code == 401
    assert bearer("cdp_00000000_unknown").get("/api/tokens/").status_code == 401


def test_nobody_sees_or_revokes_anothers_tokens(people):
    row, _ = do_create_token(people["alice"], "mine")
    client = client_for(people["bob"])

    assert client.get("/api/tokens/").json()["results"] == []
    assert client.delete(f"/api/tokens/{row.pk}/").status_code == 404
    assert client.delete("/api/tokens/not-a-number/").status_code == 404
    row.refresh_from_db()
    assert row.revoked_at is None


@pytest.mark.parametrize(
    "body, pointer",
    [
        ({"name": "taken"}, "/name"),
        ({}, "/name"),
        ({"name": "later", "expiresAt": "2000-01-01T00:00:00Z"}, "/expiresAt"),
        ({"name": "later", "expiresAt": "soon"}, "/expiresAt"),
        (["name"], ""),
    ],
)
def test_bad_token_requests_are_400_and_issue_nothing(people, body, pointer):
    do_create_token(people["alice"], "taken")

    response = client_for(people["alice"]).post("/api/tokens/", body, format="json")

    assert response.status_code == 400
    assert pointers(response) == [pointer]
    assert ApiToken.objects.count() == 1


# --- Service accounts ---------------------------------------------------------------------------


def test_a_team_member_creates_a_service_account_and_issues_its_token(people):
    client = client_for(people["dave"])

    created = client.post(
        "/api/service-accounts/", {"username": "deploy-bot", "owner": TEAM, "description": "CI"}, format="json"
    )
    issued = client.post("/api/service-accounts/deploy-bot/tokens/", {"name": "ci"}, format="json")

    assert created.status_code == 201
    assert created.json() == {**created.json(), "username": "deploy-bot", "owner": TEAM, "description": "CI"}
    bot = User.objects.get(username="deploy-bot")
    assert not bot.has_usable_password() and bot.service_account.owner.name == TEAM
    assert issued.status_code == 201
    whoami = bearer(issued.json()["token"]).get("/api/tokens/")
    assert whoami.status_code == 200 and [t["name"] for t in whoami.json()["results"]] == ["ci"]
    assert AuditEvent.objects.filter(action="service_account.created", actor="dave", object_id="deploy-bot").exists()


def test_service_accounts_are_only_for_their_teams_members(people):
    ServiceAccount.objects.create(user=User.objects.create_user("deploy-bot"), owner=Group.objects.get(name=TEAM))
    outsider = client_for(people["bob"])

    refused = outsider.post("/api/service-accounts/", {"username": "my-bot", "owner": TEAM}, format="json")

    assert refused.status_code == 403
    assert not User.objects.filter(username="my-bot").exists()
    assert outsider.get("/api/service-accounts/").json()["results"] == []
    assert outsider.post("/api/service-accounts/deploy-bot/tokens/", {"name": "x"}, format="json").status_code == 404
    assert outsider.delete("/api/service-accounts/deploy-bot/").status_code == 404
    assert [a["username"] for a in client_for(people["dave"]).get("/api/service-accounts/").json()["results"]] == [
        "deploy-bot"
    ]
    assert client_for(people["root"]).get("/api/service-accounts/deploy-bot/").status_code == 200


@pytest.mark.parametrize(
    "body, pointer",
    [
        ({"username": "alice", "owner": TEAM}, "/username"),
        ({"username": "bad name!", "owner": TEAM}, "/username"),
        ({"username": "bot", "owner": "no-such-team"}, "/owner"),
        ({"username": "bot"}, "/owner"),
    ],
)
def test_bad_service_account_requests_are_400(people, body, pointer):
    response = client_for(people["dave"]).post("/api/service-accounts/", body, format="json")

    assert response.status_code == 400
    assert pointers(response) == [pointer]
    assert not ServiceAccount.objects.exists()


def test_deleting_a_service_account_deletes_its_user_and_tokens(people):
    client = client_for(people["dave"])
    client.post("/api/service-accounts/", {"username": "deploy-bot", "owner": TEAM}, format="json")
    token = client.post("/api/service-accounts/deploy-bot/tokens/", {"name": "ci"}, format="json").json()["token"]

    response = client.delete("/api/service-accounts/deploy-bot/")

    assert response.status_code == 204
    assert not User.objects.filter(username="deploy-bot").exists()
    assert bearer(token).get("/api/tokens/").status_code == 401


# --- Application grants -------------------------------------------------------------------------


def test_readers_see_who_may_do_what(people):
    response = client_for(people["bob"]).get("/api/applications/shop/permissions/")

    assert response.status_code == 200
    assert response.json() == {
        "application": "shop",
        "users": [
            {"name": "alice", "actions": ["execute", "manage", "write"]},
            {"name": "bob", "actions": ["read"]},
            {"name": "dave", "actions": ["execute"]},
        ],
        "groups": [],
    }
    assert client_for(people["charlie"]).get("/api/applications/shop/permissions/").status_code == 404
    assert client_for(people["bob"]).get("/api/applications/nope/permissions/").status_code == 404


def test_an_owner_grants_and_revokes_and_both_are_audited(people, shop):
    client = client_for(people["alice"])

    granted = client.post("/api/applications/shop/permissions/", {"user": "charlie", "action": "read"}, format="json")
    team = client.post("/api/applications/shop/permissions/", {"group": TEAM, "action": "execute"}, format="json")
    assert can(people["charlie"], READ, shop)
    revoked = client.delete("/api/applications/shop/permissions/?user=charlie&action=read")
    by_body = client.delete("/api/applications/shop/permissions/", {"group": TEAM, "action": "execute"}, format="json")

    assert granted.status_code == 201
    assert {"name": "charlie", "actions": ["read"]} in granted.json()["users"]
    assert team.json()["groups"] == [{"name": TEAM, "actions": ["execute"]}]
    assert revoked.status_code == 204 and by_body.status_code == 204
    assert not can(people["charlie"], READ, shop)
    events = AuditEvent.objects.filter(actor="alice", action__startswith="permission.").order_by("created_at", "id")
    assert [(e.action, e.details["grantee"], e.source, e.ip_address) for e in events] == [
        ("permission.granted", "charlie", "api", "127.0.0.1"),
        ("permission.granted", TEAM, "api", "127.0.0.1"),
        ("permission.revoked", "charlie", "api", "127.0.0.1"),
        ("permission.revoked", TEAM, "api", "127.0.0.1"),
    ]


def test_a_writer_cannot_grant_themselves_execute_nor_anything_else(people, shop):
    wendy = User.objects.create_user("wendy")
    do_grant(shop, wendy, "write", actor="setup")
    client = client_for(wendy)

    granted = client.post("/api/applications/shop/permissions/", {"user": "wendy", "action": "execute"}, format="json")
    revoked = client.delete("/api/applications/shop/permissions/?user=alice&action=manage")

    assert granted.status_code == 403 and revoked.status_code == 403
    assert granted.json()["errors"][0]["message"] == "You may not manage grants in application shop."
    assert not can(wendy, "execute", shop) and can(people["alice"], "manage", shop)
    assert not AuditEvent.objects.filter(actor="wendy").exists()
    # The same rule holds for a direct call of the service, whatever page or command it comes from.
    with pytest.raises(PermissionRefused):
        do_grant(shop, wendy, "execute", actor=Actor(username="wendy", user=wendy))
    assert not can(wendy, "execute", shop)


def test_changing_grants_needs_manage(people, shop):
    client = client_for(people["bob"])

    granted = client.post("/api/applications/shop/permissions/", {"user": "bob", "action": "write"}, format="json")
    revoked = client.delete("/api/applications/shop/permissions/?user=alice&action=write")

    assert granted.status_code == 403 and revoked.status_code == 403
    assert not AuditEvent.objects.filter(actor="bob").exists()
    assert client_for(people["dave"]).post(
        "/api/applications/shop/permissions/", {"user": "dave", "action": "write"}, format="json"
    ).status_code == 403


@pytest.mark.parametrize(
    "body, pointer",
    [
        ({"user": "nobody", "action": "read"}, "/user"),
        ({"group": "nobody", "action": "read"}, "/group"),
        ({"user": "bob", "group": TEAM, "action": "read"}, ""),
        ({"action": "read"}, ""),
        ({"user": "bob", "action": "admin"}, "/action"),
        ("bob", ""),
    ],
)
def test_bad_grants_are_400_and_change_nothing(people, body, pointer):
    events = AuditEvent.objects.count()

    response = client_for(people["alice"]).post("/api/applications/shop/permissions/", body, format="json")

    assert response.status_code == 400
    assert pointers(response) == [pointer]
    assert AuditEvent.objects.count() == events


# --- Audit log ----------------------------------------------------------------------------------


@pytest.fixture
def history(people, shop, blog):
    """Events in shop (its pipeline saved, the grants, a start), in blog (two days ago), and of no application."""
    record("execution.started", "alice", application=shop, object_type="execution", object_id="e1")
    record("pipeline.deleted", "eve", application=blog)
    record("token.created", "alice", object_type="token", object_id="1")
    AuditEvent.objects.filter(application=blog).update(created_at=timezone.now() - timedelta(days=2))


def test_the_audit_log_shows_only_readable_applications_events(people, history):
    def actions(user) -> set[str]:
        response = client_for(user).get("/api/audit-events/?page_size=100")
        assert response.status_code == 200
        return {(event["application"], event["action"]) for event in response.json()["results"]}

    assert actions(people["bob"]) == {
        ("shop", "pipeline.saved"), ("shop", "permission.granted"), ("shop", "execution.started"),
    }
    assert actions(people["charlie"]) == set()
    assert {("", "token.created"), ("blog", "pipeline.deleted")} <= actions(people["root"])


def test_the_audit_log_is_newest_first_and_filters(people, history):
    client = client_for(people["root"])

    def listed(query: str) -> list[tuple[str, str]]:
        response = client.get(f"/api/audit-events/?page_size=100&{query}")
        assert response.status_code == 200, response.json()
        return [(event["actor"], event["action"]) for event in response.json()["results"]]

    everything = client.get("/api/audit-events/?page_size=100").json()["results"]
    assert [e["createdAt"] for e in everything] == sorted((e["createdAt"] for e in everything), reverse=True)
    assert listed("application=blog") == [("eve", "pipeline.deleted"), ("system", "pipeline.saved")]
    assert listed("action=execution.started&actor=alice") == [("alice", "execution.started")]
    assert set(listed("source=system")) >= {("eve", "pipeline.deleted"), ("setup", "permission.granted")}
    assert listed("source=api") == []
    cutoff = (timezone.now() - timedelta(days=1)).isoformat().replace("+", "%2B")
    assert listed(f"created_before={cutoff}") == [("eve", "pipeline.deleted"), ("system", "pipeline.saved")]
    assert ("eve", "pipeline.deleted") not in listed(f"created_after={cutoff}")
    assert client.get("/api/audit-events/?source=martian").status_code == 400


def test_the_audit_log_costs_the_same_queries_for_any_page(people, shop):
    client = client_for(people["bob"])

    def queries(count: int) -> int:
        AuditEvent.objects.all().delete()
        for index in range(count):
            record("execution.started", "alice", application=shop, object_id=str(index))
        with CaptureQueriesContext(connection) as captured:
            assert len(client.get("/api/audit-events/").json()["results"]) == count
        return len(captured)

    # The readable application ids, then the page.
    assert queries(2) == queries(20) == 2


def test_the_audit_log_is_read_only(people):
    assert client_for(people["root"]).post("/api/audit-events/", {}, format="json").status_code == 405


@pytest.mark.parametrize(
    "method, url",
    [
        ("get", "/api/tokens/"),
        ("post", "/api/tokens/"),
        ("delete", "/api/tokens/1/"),
        ("get", "/api/service-accounts/"),
        ("post", "/api/service-accounts/"),
        ("post", "/api/service-accounts/deploy-bot/tokens/"),
        ("get", "/api/applications/shop/permissions/"),
        ("post", "/api/applications/shop/permissions/"),
        ("delete", "/api/applications/shop/permissions/"),
        ("get", "/api/audit-events/"),
    ],
)
def test_anonymous_is_401_everywhere(shop, method, url):
    response = getattr(APIClient(), method)(url, {}, format="json")

    assert response.status_code == 401
    assert response.json()["errors"][0]["pointer"] == ""
