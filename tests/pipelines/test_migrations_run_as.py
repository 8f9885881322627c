"""Upgrading keeps existing rows working: executions act as their starter, and an application's owners manage it."""

import pytest

from tests.accounts.test_migrations import executor_leaf_nodes, migrate

BEFORE = [("pipelines", "0006_secrets")]
AFTER = [("pipelines", "0008_application_manage_permission")]


@pytest.mark.django_db(transaction=True)
def test_existing_executions_act_as_their_starter_and_owners_get_manage():
    old = migrate(BEFORE)
    users = {name: old.get_model("auth", "User").objects.create(username=name) for name in ("bob", "alice", "wendy")}
    shop = old.get_model("pipelines", "Application").objects.create(name="shop")
    executions = {name: old.get_model("pipelines", "Execution").objects.create(
        application=shop, name="deliver", definition={}, started_by=name).id for name in ("cli", "bob", "ghost")}
    permission = old.get_model("auth", "Permission").objects
    grants = old.get_model("pipelines", "ApplicationUserPermission").objects
    for name, codenames in (("alice", ("change_application", "execute_application")),
                            ("wendy", ("change_application",))):
        for codename in codenames:
            grants.create(user=users[name], permission=permission.get(codename=codename), content_object=shop)
    team = old.get_model("auth", "Group").objects.create(name="shop-owners")
    for codename in ("change_application", "execute_application"):
        old.get_model("pipelines", "ApplicationGroupPermission").objects.create(
            group=team, permission=permission.get(codename=codename), content_object=shop)

    new = migrate(AFTER)
    rows = new.get_model("pipelines", "Execution").objects
    acting = {name: rows.values_list("run_as__username", "run_as_name", "run_as_system").get(id=pk)
              for name, pk in executions.items()}
    assert acting == {"cli": (None, "cli", True), "bob": ("bob", "bob", False), "ghost": (None, "ghost", False)}
    managers = new.get_model("pipelines", "ApplicationUserPermission").objects.filter(
        permission__codename="manage_application")
    assert list(managers.values_list("user__username", flat=True)) == ["alice"]
    assert new.get_model("pipelines", "ApplicationGroupPermission").objects.filter(
        permission__codename="manage_application", group=team.pk).exists()
    migrate(executor_leaf_nodes())
