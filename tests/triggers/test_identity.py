"""Whom a trigger's execution acts as: its runAsUser service account, checked like anyone, or the triggers identity."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from apps.accounts.models import AuditEvent, ServiceAccount
from apps.accounts.permissions import PermissionRefused
from apps.accounts.services import do_grant
from apps.pipelines.checks import child_start_refusal
from apps.pipelines.models import Application
from apps.pipelines.services import do_save_pipeline
from apps.triggers.models import InboundEvent
from tests.triggers.helpers import WAIT, executions_of, post

pytestmark = pytest.mark.django_db


def hook(**extra):
    return {"type": "webhook", "enabled": True, "source": "deploys", **extra}


@pytest.fixture
def deploy_bot():
    team = Group.objects.create(name="ci")
    bot = User.objects.create_user("deploy-bot")
    ServiceAccount.objects.create(user=bot, owner=team)
    return bot, team


def save(triggers, user="", **extra):
    Application.objects.get_or_create(name="shop")
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "deliver", "stages": [WAIT],
                                    "triggers": triggers, **extra}, user=user)
    return pipeline


def test_a_trigger_with_run_as_user_starts_as_that_service_account_when_it_may_execute(deploy_bot):
    bot, _ = deploy_bot
    pipeline = save([hook(runAsUser="deploy-bot")])
    do_grant(pipeline.application, bot, "execute", actor="setup")

    post("/webhooks/webhook/deploys", {})

    [execution] = executions_of(pipeline)
    assert execution.run_as == bot
    assert execution.trigger["user"] == "deploy-bot"
    audit = AuditEvent.objects.get(action="execution.started")
    assert (audit.actor, audit.source) == ("deploy-bot", "trigger")


def test_a_service_account_without_execute_starts_nothing_and_says_why(deploy_bot):
    pipeline = save([hook(runAsUser="deploy-bot")])

    post("/webhooks/webhook/deploys", {})

    assert executions_of(pipeline) == []
    assert "may not" in InboundEvent.objects.get().reason


def test_only_members_of_the_service_accounts_team_may_save_a_trigger_running_as_it(deploy_bot):
    _, team = deploy_bot
    alice = User.objects.create_user("alice")
    application, _ = Application.objects.get_or_create(name="shop")
    do_grant(application, alice, "write", actor="setup")

    with pytest.raises(PermissionRefused) as refused:
        save([hook(runAsUser="deploy-bot")], user=alice)
    assert refused.value.field == "/triggers/0/runAsUser"

    alice.groups.add(team)
    save([hook(runAsUser="deploy-bot")], user=alice)


def test_a_run_as_user_that_is_not_a_service_account_is_refused_at_save():
    User.objects.create_user("mallory")
    with pytest.raises(PermissionRefused) as refused:
        save([hook(runAsUser="mallory")])
    assert "not an active service account" in refused.value.message


def test_the_triggers_identity_starts_its_own_pipeline_but_nothing_elsewhere():
    pipeline = save([hook()])
    other, _ = do_save_pipeline({"application": "billing", "name": "charge", "stages": [WAIT]})

    post("/webhooks/webhook/deploys", {})

    [execution] = executions_of(pipeline)
    assert execution.run_as.username == "system:triggers"
    assert not execution.run_as.has_usable_password()
    assert "may not run pipelines of application 'billing'" in child_start_refusal(execution, other)
