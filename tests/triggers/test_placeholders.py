"""A trigger with nothing filled in — what Deck saves when "Add trigger" is clicked and left — loads as in
Spinnaker, never fires, and says so; one filled in halfway is still refused at the field it lacks."""

from __future__ import annotations

import pytest

from apps.pipelines.definition.trigger_types import TRIGGER_TYPES
from apps.pipelines.problems import InvalidDocument
from apps.triggers.kinds.base import KINDS
from apps.triggers.models import TriggerIndex
from tests.triggers.helpers import save_with_triggers

KINDS_WITH_REQUIRED_FIELDS = sorted(name for name, kind in KINDS.items() if any(f.required for f in kind.fields))


def test_every_kind_that_needs_fields_is_covered():
    assert {"docker", "git", "cron", "jenkins", "webhook", "pipeline"} <= set(KINDS_WITH_REQUIRED_FIELDS)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", KINDS_WITH_REQUIRED_FIELDS)
def test_a_blank_trigger_saves_is_never_indexed_and_is_described_as_never_running(kind):
    pipeline = save_with_triggers([{"type": kind, "enabled": True}], secret=None)

    assert pipeline.definition["triggers"] == [{"type": kind, "enabled": True}]
    assert not TriggerIndex.objects.filter(pipeline=pipeline).exists()
    words = TRIGGER_TYPES[kind].describe({"type": kind, "enabled": True})
    required = [f.name for f in KINDS[kind].fields if f.required]
    assert words.startswith("Never runs") and all(name in words for name in required)


@pytest.mark.django_db
def test_a_docker_trigger_filled_in_halfway_is_refused_at_the_field_it_lacks():
    with pytest.raises(InvalidDocument) as refused:
        save_with_triggers([{"type": "docker", "enabled": True, "account": "local"}], secret=None)
    assert [(p.pointer, p.message) for p in refused.value.problems] == [("/triggers/0/repository", "is required")]
    # An empty string is nothing filled in, and a field another kind has is none of cron's own: both are blank.
    pipeline = save_with_triggers([{"type": "docker", "repository": ""}, {"type": "cron", "tag": "x"}], secret=None)
    assert not TriggerIndex.objects.filter(pipeline=pipeline).exists()
