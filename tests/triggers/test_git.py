"""Git pushes start pipelines: each provider's documented payload, its signature, replays, and what is recorded."""

from __future__ import annotations

import json

import pytest

from apps.triggers.models import InboundEvent, TriggerIndex, TriggerMatch
from tests.triggers.helpers import executions_of, post, save_with_triggers, signature

pytestmark = pytest.mark.django_db

SECRET_REF = "${#secret('hook-key')}"


def git_trigger(source, project="acme", slug="shop", branch="main|release-.*", secret=SECRET_REF, **extra):
    trigger = {"type": "git", "enabled": True, "source": source, "project": project, "slug": slug, "branch": branch}
    return {**trigger, "secret": secret, **extra} if secret else {**trigger, **extra}


def github_push(branch="main", commit="9f1c2d3e4b5a69788796a5b4c3d2e1f0a9b8c7d6"):
    return {
        "ref": f"refs/heads/{branch}", "before": "0" * 40, "after": commit, "created": False, "deleted": False,
        "repository": {"id": 1, "name": "shop", "full_name": "acme/shop",
                       "owner": {"name": "acme", "login": "acme"}},
        "pusher": {"name": "alice", "email": "alice@example.com"},
        "head_commit": {"id": commit, "message": "Fix checkout"},
    }


def github_headers(body: bytes, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958", **extra):
    return {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": signature(body), **extra}


def test_a_signed_github_push_starts_the_pipeline_with_the_push_in_its_trigger():
    pipeline = save_with_triggers([git_trigger("github")])
    body = json.dumps(github_push()).encode()

    response = post("/webhooks/git/github", body, github_headers(body))

    assert response.status_code == 200, response.content
    [execution] = executions_of(pipeline)
    assert response.json()["executions"] == [str(execution.id)]
    trigger = execution.trigger
    assert (trigger["type"], trigger["source"], trigger["project"], trigger["slug"], trigger["branch"]) == (
        "git", "github", "acme", "shop", "main")
    assert trigger["hash"] == "9f1c2d3e4b5a69788796a5b4c3d2e1f0a9b8c7d6"
    assert "secret" not in trigger
    assert trigger["user"] == "system:triggers"
    assert execution.run_as.username == "system:triggers"


def test_a_push_with_a_wrong_signature_is_refused_403_and_starts_nothing():
    pipeline = save_with_triggers([git_trigger("github")])
    body = json.dumps(github_push()).encode()

    response = post("/webhooks/git/github", body, {**github_headers(body), "X-Hub-Signature-256": signature(body, "x")})

    assert response.status_code == 403
    assert "X-Hub-Signature-256" in response.json()["errors"][0]["message"]
    assert executions_of(pipeline) == []
    event = InboundEvent.objects.get()
    assert (event.outcome, event.status_code, event.source) == ("refused", 403, "git/github")
    assert TriggerMatch.objects.get().refusal.startswith("the X-Hub-Signature-256 header does not match")
    assert "does not match" in TriggerIndex.objects.get(pipeline=pipeline).last_refusal


def test_a_push_without_a_signature_is_refused_401():
    pipeline = save_with_triggers([git_trigger("github")])
    body = json.dumps(github_push()).encode()

    response = post("/webhooks/git/github", body, {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1"})

    assert response.status_code == 401
    assert executions_of(pipeline) == []


def test_a_replayed_delivery_is_refused_and_starts_nothing_more():
    pipeline = save_with_triggers([git_trigger("github")])
    body = json.dumps(github_push()).encode()
    assert post("/webhooks/git/github", body, github_headers(body)).status_code == 200

    replay = post("/webhooks/git/github", body, github_headers(body))

    assert replay.status_code == 403
    assert "already received" in replay.json()["errors"][0]["message"]
    assert len(executions_of(pipeline)) == 1


def test_a_forged_delivery_id_does_not_block_the_real_delivery():
    pipeline = save_with_triggers([git_trigger("github")])
    body = json.dumps(github_push()).encode()
    forged = post("/webhooks/git/github", body, {**github_headers(body), "X-Hub-Signature-256": "sha256=00"})
    assert forged.status_code == 403

    assert post("/webhooks/git/github", body, github_headers(body)).status_code == 200
    assert len(executions_of(pipeline)) == 1


def test_a_branch_that_does_not_match_the_regex_starts_nothing():
    pipeline = save_with_triggers([git_trigger("github", branch="release-.*")])
    body = json.dumps(github_push(branch="feature/x")).encode()

    response = post("/webhooks/git/github", body, github_headers(body))

    assert response.status_code == 200
    assert executions_of(pipeline) == []
    assert InboundEvent.objects.get().outcome == "ignored"


def test_a_ping_is_answered_and_recorded_as_ignored():
    save_with_triggers([git_trigger("github")])
    response = post("/webhooks/git/github", {"zen": "Keep it simple."}, {"X-GitHub-Event": "ping"})
    assert response.status_code == 200
    assert response.json()["eventProcessed"] is False
    assert InboundEvent.objects.get().outcome == "ignored"


def test_malformed_bodies_are_refused_400_with_a_reason():
    save_with_triggers([git_trigger("github")])
    for body in (b"{not json", b"[1, 2]", json.dumps({"ref": "refs/heads/main"}).encode()):
        response = post("/webhooks/git/github", body, {"X-GitHub-Event": "push"})
        assert response.status_code == 400, body
        assert response.json()["errors"][0]["message"]
    assert InboundEvent.objects.filter(outcome="refused", status_code=400).count() == 3


def test_a_gitlab_push_needs_its_token():
    pipeline = save_with_triggers([git_trigger("gitlab", project="acme/web")])
    payload = {
        "object_kind": "push", "ref": "refs/heads/main", "before": "0" * 40, "after": "a" * 40,
        "checkout_sha": "a" * 40,
        "project": {"name": "Shop", "namespace": "Web", "path_with_namespace": "acme/web/shop"},
        "repository": {"name": "Shop"},
    }
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "u-1"}

    assert post("/webhooks/git/gitlab", payload, {**headers, "X-Gitlab-Token": "wrong"}).status_code == 403
    assert post("/webhooks/git/gitlab", payload, {**headers, "X-Gitlab-Event-UUID": "u-2"}).status_code == 401
    response = post("/webhooks/git/gitlab", payload, {**headers, "X-Gitlab-Token": "s3cret-hook-key"})

    assert response.status_code == 200, response.content
    [execution] = executions_of(pipeline)
    assert (execution.trigger["project"], execution.trigger["slug"], execution.trigger["hash"]) == (
        "acme/web", "shop", "a" * 40)


def test_a_bitbucket_cloud_push_is_signed_with_x_hub_signature():
    pipeline = save_with_triggers([git_trigger("bitbucket", project="acme")])
    payload = {
        "repository": {"full_name": "acme/shop", "name": "shop", "type": "repository"},
        "push": {"changes": [{"new": {"type": "branch", "name": "main", "target": {"hash": "b" * 40}},
                              "old": {"type": "branch", "name": "main", "target": {"hash": "c" * 40}}}]},
    }
    body = json.dumps(payload).encode()
    headers = {"X-Event-Key": "repo:push", "X-Request-UUID": "r-1", "X-Hub-Signature": signature(body)}

    response = post("/webhooks/git/bitbucket", body, headers)

    assert response.status_code == 200, response.content
    [execution] = executions_of(pipeline)
    assert (execution.trigger["branch"], execution.trigger["hash"]) == ("main", "b" * 40)


def test_a_bitbucket_server_push_reaches_stash_triggers():
    pipeline = save_with_triggers([git_trigger("stash", project="SHOP", slug="web")])
    payload = {
        "eventKey": "repo:refs_changed",
        "repository": {"slug": "web", "name": "Web", "project": {"key": "SHOP", "name": "Shop"}},
        "changes": [{"ref": {"id": "refs/heads/main", "displayId": "main", "type": "BRANCH"},
                     "refId": "refs/heads/main", "fromHash": "d" * 40, "toHash": "e" * 40, "type": "UPDATE"}],
    }
    body = json.dumps(payload).encode()
    headers = {"X-Event-Key": "repo:refs_changed", "X-Request-Id": "s-1", "X-Hub-Signature": signature(body)}

    for path in ("/webhooks/git/stash", "/webhooks/git/bitbucket"):
        response = post(path, body, {**headers, "X-Request-Id": path})
        assert response.status_code == 200, response.content
    assert [e.trigger["hash"] for e in executions_of(pipeline)] == ["e" * 40, "e" * 40]


def test_disabled_triggers_and_disabled_pipelines_start_nothing():
    disabled_trigger = save_with_triggers([git_trigger("github", enabled=False)], name="one")
    disabled_pipeline = save_with_triggers([git_trigger("github")], name="two", disabled=True)
    body = json.dumps(github_push()).encode()

    response = post("/webhooks/git/github", body, github_headers(body))

    assert response.status_code == 200
    assert executions_of(disabled_trigger) == executions_of(disabled_pipeline) == []


def test_a_trigger_without_a_secret_fires_on_any_well_formed_push():
    pipeline = save_with_triggers([git_trigger("github", secret=None)], secret=None)
    response = post("/webhooks/git/github", github_push(), {"X-GitHub-Event": "push"})
    assert response.status_code == 200
    assert len(executions_of(pipeline)) == 1


def test_a_body_over_the_limit_is_refused_413(settings):
    settings.TRIGGER_MAX_BODY_BYTES = 1000
    save_with_triggers([git_trigger("github")])
    response = post("/webhooks/git/github", {"padding": "x" * 2000}, {"X-GitHub-Event": "push"})
    assert response.status_code == 413
    assert "TRIGGER_MAX_BODY_BYTES" in response.json()["errors"][0]["message"]


def test_a_flood_from_one_address_is_rate_limited(settings):
    settings.TRIGGER_RATE_LIMIT = "3/minute"
    for _ in range(3):
        assert post("/webhooks/git/github", {"zen": "hi"}, {"X-GitHub-Event": "ping"}).status_code == 200
    refused = post("/webhooks/git/github", {"zen": "hi"}, {"X-GitHub-Event": "ping"})
    assert refused.status_code == 429
    assert refused["Retry-After"]


def test_a_repository_name_longer_than_the_index_column_still_matches():
    long_slug = "s" * 600
    pipeline = save_with_triggers([git_trigger("github", slug=long_slug)])
    payload = {**github_push(), "repository": {"name": long_slug, "owner": {"login": "acme"}}}
    body = json.dumps(payload).encode()

    assert post("/webhooks/git/github", body, github_headers(body)).status_code == 200
    assert len(executions_of(pipeline)) == 1


def test_a_very_long_webhook_source_is_recorded_without_error():
    response = post("/webhooks/webhook/" + "a" * 200, {"x": 1})
    assert response.status_code == 200
    assert InboundEvent.objects.get().source.startswith("webhook/aaa")
