"""Every registered stage type's checks, fuzzed with Hypothesis: whatever a stage holds, validation answers with
problems at JSON pointers into the stage — never an exception, never a pointer elsewhere — and fast.

Stages are built from each type's own declared fields (with values of every JSON shape, right and wrong) and
from the keys Spinnaker documents use, so a stage type added later is fuzzed with no change here.
Derandomized so CI runs the same cases; FUZZ_EXAMPLES=N digs deeper.
"""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.pipelines.definition import validate_pipeline
from apps.pipelines.stages import all_stage_types, get_stage_type

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MAX_SECONDS = 2.0
# Keys Spinnaker stages carry whatever their type: the provider's, the manifests', artifacts', targets'.
COMMON_KEYS = ("account", "cloudProvider", "cluster", "clusters", "manifests", "manifestName", "location",
               "namespaceOverride", "moniker", "requiredArtifactIds", "requiredArtifacts", "expectedArtifacts",
               "trafficManagement", "labelSelectors", "kinds", "options", "patchBody", "replicas", "source",
               "manifestArtifact", "manifestArtifactId", "mode", "criteria", "numRevisionsBack", "target",
               "serverGroupName", "capacity", "image", "loadBalancers", "preconditions", "canaryConfig",
               "application", "pipeline", "executionOptions", "expectedArtifact", "waitTime", "url",
               "skipExpressionEvaluation", "stageTimeoutMs", "propertyFile", "manifest", "namespace")

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=40), st.sampled_from(["${trigger.tag}", "${", "deployment web", "default",
                                                           "-1", "ReplicaSet", "embedded/base64", "docker"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12) | st.sampled_from(COMMON_KEYS), inner,
                                                 max_size=5)), max_leaves=20)


def stage_of(type_name: str):
    keys = st.sampled_from(sorted({*COMMON_KEYS, *_declared(type_name)}))
    return st.dictionaries(keys, values, max_size=8).map(
        lambda fields: {**fields, "refId": "1", "name": "Fuzzed", "type": type_name})


def _declared(type_name: str) -> tuple[str, ...]:
    stage_type = get_stage_type(type_name)
    return tuple(field.name for field in getattr(stage_type, "fields", ()) or ())


@pytest.mark.parametrize("type_name", sorted(all_stage_types()))
def test_a_stage_of_any_shape_gets_problems_at_pointers_and_never_an_exception(type_name):
    @FUZZ
    @given(stage_of(type_name))
    def check(stage):
        document = {"application": "shop", "name": "fuzzed", "stages": [stage]}
        started = time.perf_counter()
        problems = validate_pipeline(document)
        assert time.perf_counter() - started < MAX_SECONDS
        for problem in problems:
            assert isinstance(problem.message, str) and problem.message
            # A problem names the stage, or a place in it (a key it has, or one it lacks).
            assert problem.pointer == "/stages/0" or problem.pointer.startswith("/stages/0/"), (
                problem.pointer, problem.message)

    check()
