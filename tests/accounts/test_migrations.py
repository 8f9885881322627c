"""Moving the application grant tables to the pipelines app keeps every grant: only Django's model state moves."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("accounts", "0001_initial"), ("pipelines", "0001_initial")]
AFTER = [("accounts", "0002_grant_tables_move_to_pipelines"), ("pipelines", "0002_application_grant_tables")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_grants_made_before_the_move_still_hold_after_it_and_after_going_back():
    old = migrate(BEFORE)
    user = old.get_model("auth", "User").objects.create(username="bob")
    shop = old.get_model("pipelines", "Application").objects.create(name="shop")
    permission = old.get_model("auth", "Permission").objects.get(codename="view_application")
    old.get_model("accounts", "ApplicationUserPermission").objects.create(
        user=user, permission=permission, content_object=shop)
    group = old.get_model("auth", "Group").objects.create(name="shop-ops")
    old.get_model("accounts", "ApplicationGroupPermission").objects.create(
        group=group, permission=permission, content_object=shop)

    new = migrate(AFTER)
    grants = new.get_model("pipelines", "ApplicationUserPermission").objects
    assert list(grants.values_list("user__username", "content_object__name")) == [("bob", "shop")]
    assert new.get_model("pipelines", "ApplicationGroupPermission").objects.get().group.name == "shop-ops"

    back = migrate(BEFORE)
    assert back.get_model("accounts", "ApplicationUserPermission").objects.count() == 1
    migrate(executor_leaf_nodes())


def executor_leaf_nodes():
    """Every app's latest migration, so the database is left as the other tests expect it."""
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()
