"""Expected artifacts are bound when a trigger fires: a match, a default, a prior one, or no start with the reason."""

from __future__ import annotations

import pytest

from apps.pipelines.problems import InvalidDocument
from apps.triggers.models import InboundEvent
from tests.triggers.helpers import executions_of, post, save_with_triggers

pytestmark = pytest.mark.django_db

IMAGE = {"type": "docker/image", "name": "registry/shop", "reference": "registry/shop:1.4", "version": "1.4"}


def expected(**extra):
    return {"id": "image", "displayName": "shop image",
            "matchArtifact": {"type": "docker/image", "name": "registry/shop"}, **extra}


def save(expected_artifact):
    trigger = {"type": "webhook", "enabled": True, "source": "images", "expectedArtifactIds": ["image"]}
    return save_with_triggers([trigger], secret=None, expectedArtifacts=[expected_artifact])


def test_a_matching_incoming_artifact_is_bound_for_later_stages():
    pipeline = save(expected())
    post("/webhooks/webhook/images", {"artifacts": [IMAGE, {"type": "git/repo", "name": "x"}]})
    [execution] = executions_of(pipeline)
    [resolved] = execution.trigger["resolvedExpectedArtifacts"]
    assert resolved["boundArtifact"] == IMAGE


def test_without_a_match_the_default_is_used_or_nothing_starts():
    default = {**IMAGE, "reference": "registry/shop:stable", "version": "stable"}
    with_default = save(expected(useDefaultArtifact=True, defaultArtifact=default))
    post("/webhooks/webhook/images", {"artifacts": []})
    [execution] = executions_of(with_default)
    assert execution.trigger["resolvedExpectedArtifacts"][0]["boundArtifact"] == default
    assert default in execution.trigger["artifacts"]


def test_an_expected_artifact_that_binds_to_nothing_starts_nothing_and_says_which():
    pipeline = save(expected())
    post("/webhooks/webhook/images", {"artifacts": [{"type": "docker/image", "name": "registry/other"}]})
    assert executions_of(pipeline) == []
    assert "shop image" in InboundEvent.objects.get().reason


def test_the_prior_artifact_stands_in_when_asked():
    pipeline = save(expected(usePriorArtifact=True))
    post("/webhooks/webhook/images", {"artifacts": [IMAGE]})
    post("/webhooks/webhook/images", {"artifacts": []})
    first, second = executions_of(pipeline)
    assert second.trigger["resolvedExpectedArtifacts"][0]["boundArtifact"] == IMAGE


def test_a_bad_match_regex_is_refused_at_save():
    with pytest.raises(InvalidDocument) as refused:
        save(expected(matchArtifact={"name": "(a)\\1"}))
    assert refused.value.problems[0].pointer == "/expectedArtifacts/0/matchArtifact/name"
