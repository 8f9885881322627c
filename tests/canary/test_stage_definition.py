"""A kayentaCanary stage is checked when its pipeline is saved: problems at JSON pointers into the document."""

import pytest

from apps.canary.stage import CanaryRefused, iso_seconds, timing
from apps.pipelines.problems import InvalidDocument
from tests.scenarios import save

pytestmark = pytest.mark.django_db


def canary(**config) -> dict:
    return {"refId": "1", "name": "Canary", "type": "kayentaCanary", "canaryConfig": config}


def problems_of(stage: dict) -> set[str]:
    with pytest.raises(InvalidDocument) as refused:
        save([stage], name="canary")
    return {problem.pointer for problem in refused.value.problems}


def test_a_stage_without_its_config_or_scopes_is_refused_at_save(people):
    assert problems_of({"refId": "1", "name": "Canary", "type": "kayentaCanary"}) == {"/stages/0/canaryConfig"}
    assert problems_of(canary(lifetimeSeconds=60, scopes=[{"controlScope": "a", "step": 0}])) == {
        "/stages/0/canaryConfig/canaryConfigId", "/stages/0/canaryConfig/scopes/0/experimentScope",
        "/stages/0/canaryConfig/scopes/0/step"}
    assert problems_of(canary(canaryConfigId="c", lifetimeDuration="an hour",
                              scopes=[{"controlScope": "a", "experimentScope": "b"}])) == {"/stages/0/canaryConfig"}
    assert problems_of(canary(canaryConfigId="c", lifetimeSeconds=60, scoreThresholds={"marginal": 90, "pass": 50},
                              scopes=[{"controlScope": "a", "experimentScope": "b"}])) == {"/stages/0/canaryConfig"}


def test_a_well_formed_stage_saves_and_expressions_wait_for_the_run(people):
    save([canary(canaryConfigId="c", lifetimeDuration="PT1H", canaryAnalysisIntervalMins=15,
                 scopes=[{"controlScope": "${parameters.baseline}", "experimentScope": "b"}])], name="canary")


def test_the_lifetime_is_cut_into_intervals():
    assert iso_seconds("PT1H30M") == 5400 and iso_seconds("P1D") == 86400 and iso_seconds("PT") is None
    assert timing({"lifetimeDuration": "PT1H", "canaryAnalysisIntervalMins": 15,
                   "beginCanaryAnalysisAfterMins": 5}) == (300, 900, 4)
    assert timing({"lifetimeHours": 1}) == (0, 3600, 1)
    assert timing({"lifetimeSeconds": 25, "canaryAnalysisIntervalSeconds": 10,
                   "beginCanaryAnalysisAfterSeconds": 2}) == (2, 10, 2)
    with pytest.raises(CanaryRefused, match="needs a lifetime"):
        timing({})
