"""The judge against cases whose answers were worked out by hand (each test's docstring shows the working).

Exact intervals for n = m = 5 at 98%: U's null distribution has C(10,5) = 252 arrangements, with
1, 1, 2, 3, 5 of them at U = 0..4, so P(U <= 1) = 2/252 = 0.0079 < 0.01 <= P(U <= 2) = 4/252:
qu = 2, and the interval runs from the 2nd smallest to the 2nd largest of the 25 differences.
"""

import math

import pytest

from apps.canary.documents import metric_settings
from apps.canary.judge import classify_metric, group_scores, hodges_lehmann, judge, remove_outliers, summary_score


def settings(**canary) -> dict:
    return metric_settings({"analysisConfigurations": {"canary": canary}})


LOW_FIVE, HIGH_FIVE = [1.0, 2, 3, 4, 5], [11.0, 12, 13, 14, 15]


def test_a_clear_increase_is_high():
    """Differences 10 + (i - j): 6 once, 7 twice, ..., 14 once. Median 10; interval [7, 13];
    bounds ±0.25·10 = ±2.5; 7 > 2.5, mean ratio 13/3 >= 1: High. U = 25 (every pair won)."""
    verdict = classify_metric("m", HIGH_FIVE, LOW_FIVE, settings(direction="increase"))
    assert verdict.classification == "High"
    assert verdict.test["u"] == 25
    assert (verdict.test["estimate"], verdict.test["lower"], verdict.test["upper"]) == (10, 7, 13)
    assert verdict.test["upperBound"] == 2.5
    assert verdict.test["effectSize"] == pytest.approx(13 / 3)
    assert not verdict.critical


def test_an_increase_is_no_failure_when_only_decreases_count():
    """Same samples, direction decrease: the upper end 13 is not below -2.5: Pass."""
    assert classify_metric("m", HIGH_FIVE, LOW_FIVE, settings(direction="decrease")).classification == "Pass"


def test_a_clear_decrease_is_low():
    """Canary 1..5 against baseline 11..15: interval [-13, -7], bounds ±2.5; -7 < -2.5: Low (U = 0)."""
    verdict = classify_metric("m", LOW_FIVE, HIGH_FIVE, settings(direction="either"))
    assert verdict.classification == "Low"
    assert (verdict.test["lower"], verdict.test["upper"], verdict.test["u"]) == (-13, -7, 0)


def test_an_increase_within_the_allowed_effect_size_passes():
    """Mean ratio 13/3 = 4.33 is below allowedIncrease 5: Pass despite the interval."""
    verdict = classify_metric("m", HIGH_FIVE, LOW_FIVE, settings(direction="increase",
                                                                  effectSize={"allowedIncrease": 5}))
    assert verdict.classification == "Pass"
    assert "allowed increase" in verdict.reason


def test_interleaved_samples_pass():
    """Canary 2,4,6,8,10 against 1,3,5,7,9: differences 2(i-j)+1, i.e. -7 ×1, -5 ×2, -3 ×3, -1 ×4, 1 ×5,
    3 ×4, 5 ×3, 7 ×2, 9 ×1. Median (13th) 1; interval [-5, 7]; bounds ±0.25: neither end clears: Pass.
    U = 15 pairs won (the differences above 0)."""
    verdict = classify_metric("m", [2.0, 4, 6, 8, 10], [1.0, 3, 5, 7, 9], settings())
    assert verdict.classification == "Pass"
    assert (verdict.test["estimate"], verdict.test["lower"], verdict.test["upper"]) == (1, -5, 7)
    assert verdict.test["u"] == 15


def test_identical_and_constant_samples_pass_without_a_test():
    assert classify_metric("m", [3.0, 2, 1], [1.0, 2, 3], settings()).reason.startswith("the canary and baseline")
    verdict = classify_metric("m", [5.0, 5, 5], [5.0, 5], settings())
    assert verdict.classification == "Pass" and verdict.test == {}


def test_no_data_is_nodata_or_a_failure_or_a_pass_as_configured():
    """Canary all NaN: removed, nothing left: Nodata; with mustHaveData NodataFailMetric; replaced by 0
    on both sides ([0, 0] against [0]): one distinct value: Pass."""
    nan = math.nan
    assert classify_metric("m", [nan, nan], [1.0, 2, nan], settings()).classification == "Nodata"
    assert classify_metric("m", [nan], [1.0], settings(mustHaveData=True)).classification == "NodataFailMetric"
    assert classify_metric("m", [nan, nan], [nan], settings(nanStrategy="replace")).classification == "Pass"
    assert classify_metric("m", [], [], settings(nanStrategy="replace")).classification == "Pass"
    critical = classify_metric("m", [], [1.0], settings(critical=True))
    assert critical.classification == "Nodata" and critical.critical


def test_outliers_outside_three_iqr_are_removed_when_asked():
    """[10.5, 11.5, 12.5, 13.5, 500]: Q1 11.5, Q3 13.5, IQR 2, fences [5.5, 19.5]: 500 goes."""
    kept, removed = remove_outliers([10.5, 11.5, 12.5, 13.5, 500], 3.0)
    assert kept == [10.5, 11.5, 12.5, 13.5] and removed == [500]
    verdict = classify_metric("m", [10.5, 11.5, 12.5, 13.5, 500], [10.0, 11, 12, 13, 14],
                              settings(outliers={"strategy": "remove"}))
    assert verdict.removed["canaryOutliers"] == [500] and verdict.canary == [10.5, 11.5, 12.5, 13.5]
    kept_all = classify_metric("m", [10.5, 11.5, 12.5, 13.5, 500], [10.0, 11, 12, 13, 14], settings())
    assert kept_all.canary[-1] == 500


def test_a_critical_metric_that_fails_scores_zero():
    metrics = [{"name": "errors", "groups": ["Errors"], "settings": settings(direction="increase", critical=True)},
               {"name": "latency", "groups": ["Latency"], "settings": settings()}]
    result = judge(metrics, {"errors": (HIGH_FIVE, LOW_FIVE), "latency": (LOW_FIVE, LOW_FIVE)},
                   {"Errors": 70, "Latency": 30})
    assert result["score"] == 0 and result["criticalFailures"] == ["errors"]


def test_group_scores_are_weighted_and_groups_without_data_left_out():
    """Errors: Pass + High = 50; Latency: Pass = 100; 0.7·50 + 0.3·100 = 65. Latency Nodata instead:
    only Errors counts: 50. Errors Pass + NodataFailMetric: 50."""
    high = classify_metric("e2", HIGH_FIVE, LOW_FIVE, settings(direction="increase"), ["Errors"])
    passed = classify_metric("e1", LOW_FIVE, LOW_FIVE, settings(), ["Errors"])
    latency = classify_metric("l", LOW_FIVE, LOW_FIVE, settings(), ["Latency"])
    weights = {"Errors": 70, "Latency": 30}
    assert summary_score(group_scores([high, passed, latency]), weights) == pytest.approx(65)
    nodata = classify_metric("l", [], LOW_FIVE, settings(), ["Latency"])
    assert summary_score(group_scores([high, passed, nodata]), weights) == pytest.approx(50)
    failed = classify_metric("e3", [], LOW_FIVE, settings(mustHaveData=True), ["Errors"])
    assert summary_score(group_scores([passed, failed]), weights) == pytest.approx(50)
    assert summary_score(group_scores([passed, latency]), {}) == 100


def test_ties_use_the_normal_approximation():
    """Canary [1,1,2,2] against [1,2,2,3]: ties, so ranks from the normal approximation:
    nm = 16, N = 8, ties 1 ×3, 2 ×4, 3 ×1: Σ(t³ - t) = 24 + 60 = 84; σ² = 16/12·(9 - 84/56) = 10;
    qu = floor(8 - 2.326·3.162) = floor(0.64) = 0, at least 1: the full range of differences [-2, 1]."""
    interval = hodges_lehmann([1.0, 1, 2, 2], [1.0, 2, 2, 3])
    assert interval["method"] == "normal approximation" and interval["rank"] == 1
    assert (interval["lower"], interval["upper"]) == (-2, 1)


def test_the_p_values_are_the_exact_ones():
    """Canary 11..15 against 1..5: U = 25, only 1 of 252 arrangements that extreme each way: p = 2/252.
    Interleaved: U = 15; P(U >= 15) = P(U <= 10) = (1+1+2+3+5+7+9+11+14+16+18)/252 = 87/252: p = 174/252."""
    assert classify_metric("m", HIGH_FIVE, LOW_FIVE, settings()).test["pValue"] == pytest.approx(2 / 252)
    interleaved = classify_metric("m", [2.0, 4, 6, 8, 10], [1.0, 3, 5, 7, 9], settings())
    assert interleaved.test["pValue"] == pytest.approx(174 / 252)


def test_the_common_language_effect_size_counts_pairs_won():
    """cles: every pair won is 25/25 = 1.0, reaching allowedIncrease 1.0: High; interleaved, 15 pairs of 25
    won is 0.6 (and the interval [-5, 7] clears no bound anyway): Pass."""
    high = classify_metric("m", HIGH_FIVE, LOW_FIVE, settings(effectSize={"measure": "cles"}))
    assert high.classification == "High" and high.test["effectSize"] == 1.0
    interleaved = classify_metric("m", [2.0, 4, 6, 8, 10], [1.0, 3, 5, 7, 9], settings(effectSize={"measure": "cles"}))
    assert interleaved.classification == "Pass" and interleaved.test["effectSize"] == pytest.approx(0.6)


def test_a_critical_low_fails_only_past_the_critical_decrease():
    """Canary 1..5 against 11..15 is Low with mean ratio 3/13 = 0.23: critical at criticalDecrease 1.0 (default),
    not critical at criticalDecrease 0.1 (0.23 > 0.1), though still Low."""
    assert classify_metric("m", LOW_FIVE, HIGH_FIVE, settings(critical=True)).critical
    lenient = classify_metric("m", LOW_FIVE, HIGH_FIVE, settings(critical=True, effectSize={"criticalDecrease": 0.1}))
    assert lenient.classification == "Low" and not lenient.critical
