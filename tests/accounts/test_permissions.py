"""The permission chokepoint, generically: any model that names its path to a governing one is restricted alike.

bob reads shop (directly), erin executes in shop through the team ``shop-ops``, charlie is granted nothing, and
root is a superuser. ``blog`` is an application nobody but root may see.
"""

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser, Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.audit import record
from apps.accounts.models import AuditEvent
from apps.accounts.permissions import (
    EXECUTE,
    READ,
    WRITE,
    RestrictedQuerySet,
    allowed_ids,
    can,
    governance,
    in_any_role,
    register_governing,
    restrict,
)
from apps.accounts.services import do_grant
from apps.pipelines.models import (
    Application,
    ApplicationGroupPermission,
    ApplicationUserPermission,
    Execution,
    Pipeline,
    PipelineRevision,
    StageExecution,
)
from apps.pipelines.services import do_save_pipeline, do_start_execution

pytestmark = pytest.mark.django_db
WAIT = [{"refId": "1", "name": "Wait", "type": "wait", "waitTime": 1}]


class GovernedRevision(PipelineRevision):
    """A model governed two hops away (revision → pipeline → application), declared only for these tests."""

    permission_path = "pipeline__application"
    objects = RestrictedQuerySet.as_manager()

    class Meta:
        proxy = True
        app_label = "pipelines"


@pytest.fixture
def world():
    shop, _ = do_save_pipeline({"application": "shop", "name": "deliver", "stages": WAIT})
    blog, _ = do_save_pipeline({"application": "blog", "name": "publish", "stages": WAIT})
    people = {name: User.objects.create_user(name) for name in ("bob", "erin", "charlie")}
    team = Group.objects.create(name="shop-ops")
    people["erin"].groups.add(team)
    do_grant(shop.application, people["bob"], READ, actor="setup")
    do_grant(shop.application, team, EXECUTE, actor="setup")
    for pipeline in (shop, blog):
        do_start_execution(pipeline, user="setup")
    record("pipeline.saved", "setup", application=shop.application)
    record("pipeline.saved", "setup", application=blog.application)
    record("token.created", "setup")
    return SimpleNamespace(shop=shop, blog=blog, root=User.objects.create_superuser("root"), **people)


def names(queryset) -> set[str]:
    """The application each row belongs to, for rows of any governed model."""
    _, path = governance(queryset.model)
    return set(queryset.values_list(f"{path}__name" if path else "name", flat=True))


def test_a_model_two_hops_from_its_governor_is_restricted_like_the_others(world):
    for model in (Application, Pipeline, Execution, StageExecution, GovernedRevision):
        assert names(model.objects.restrict(world.bob)) == {"shop"}, model
        assert names(restrict(model.objects.all(), world.erin, EXECUTE)) == {"shop"}, model
        assert names(restrict(model.objects.all(), world.bob, EXECUTE)) == set(), model
        assert not restrict(model.objects.all(), world.charlie, READ).exists(), model
        assert names(restrict(model.objects.all(), world.root, WRITE)) == {"shop", "blog"}, model


def test_can_reads_the_governing_object_off_the_path(world):
    revision = GovernedRevision.objects.get(pipeline=world.shop)
    stage = StageExecution.objects.get(execution__pipeline=world.blog)
    assert can(world.bob, READ, revision) and not can(world.bob, WRITE, revision)
    assert can(world.erin, EXECUTE, revision)
    assert not can(world.bob, READ, stage) and can(world.root, EXECUTE, stage)
    assert not can(AnonymousUser(), READ, revision)


def test_a_governed_check_costs_one_query_and_a_superusers_none(world):
    stage = StageExecution.objects.select_related("execution").get(execution__pipeline=world.shop)
    with CaptureQueriesContext(connection) as queries:
        assert can(world.bob, READ, stage)
    assert len(queries) == 1
    with CaptureQueriesContext(connection) as queries:
        assert can(world.root, READ, stage)
    assert len(queries) == 0


def test_audit_events_of_no_application_are_for_superusers_only(world):
    assert set(AuditEvent.objects.restrict(world.bob).values_list("application_name", flat=True)) == {"shop"}
    assert AuditEvent.objects.restrict(world.root).filter(application__isnull=True).exists()
    assert not AuditEvent.objects.restrict(world.charlie).exists()


def test_allowed_ids_answers_a_whole_page_in_one_query(world):
    ids = [world.shop.application_id, world.blog.application_id]
    with CaptureQueriesContext(connection) as queries:
        assert allowed_ids(world.erin, EXECUTE, Application, ids) == {world.shop.application_id}
    assert len(queries) == 1
    assert allowed_ids(world.root, WRITE, Application, ids) == set(ids)


def test_model_wide_permissions_grant_nothing(world):
    world.charlie.user_permissions.add(*ApplicationUserPermission._meta.get_field("permission").related_model
                                       .objects.filter(codename__in=["view_application", "execute_application"]))
    assert not can(User.objects.get(pk=world.charlie.pk), READ, world.shop.application)


def test_an_unknown_action_or_an_ungoverned_model_is_a_mistake_not_a_refusal(world):
    with pytest.raises(ValueError, match="unknown action 'deploy' on Application"):
        Application.objects.restrict(world.bob, "deploy")
    with pytest.raises(LookupError, match="neither governing nor governed"):
        restrict(User.objects.all(), world.bob, READ)


def test_registering_checks_that_the_actions_granted_are_actions_it_allows():
    with pytest.raises(ValueError, match="granted_as names actions it does not allow"):
        register_governing(Application, allowing={READ: ("view_application",)}, granted_as={"deploy": "x"},
                           user_grants=ApplicationUserPermission, group_grants=ApplicationGroupPermission)


def test_roles_are_groups_and_a_superuser_holds_them_all(world):
    assert in_any_role(world.erin, ["shop-ops", "other"]) and not in_any_role(world.bob, ["shop-ops"])
    assert in_any_role(world.root, ["anything"]) and in_any_role(world.charlie, [])
