"""The canary judge: Kayenta's NetflixACAJudge (v1.0) over canary and baseline samples, per metric and in all.

Public functions: :func:`classify_metric` (one metric's classification from its two samples),
:func:`group_scores` and :func:`summary_score` (the 0-100 score), :func:`judge` (all of it for one
config and one interval's samples), :func:`remove_outliers` and :func:`hodges_lehmann`.

What is computed, per metric (``experiment`` is the canary, ``control`` the baseline):

1. NaN and ±Inf samples are removed (``nanStrategy: remove``, the default) or replaced by 0
   (``replace``).
2. Outliers are kept (the default) or, with ``outliers.strategy: remove``, every value outside
   ``[Q1 - f·IQR, Q3 + f·IQR]`` (``f = outlierFactor``, default 3; quartiles by linear
   interpolation, numpy's default) is removed from each sample separately.
3. No sample on either side: ``Nodata`` (``nanStrategy: remove``; ``NodataFailMetric`` with
   ``mustHaveData`` on a metric that is not critical), or ``Pass`` (``replace``). The same values on
   both sides, or one distinct value in all: ``Pass``.
4. The Mann-Whitney U test (``scipy.stats.mannwhitneyu``, two-sided; U is the canary's count of
   pairs it wins, ties counting one half) and the Hodges-Lehmann estimate of the shift canary −
   baseline, the median of all differences ``x_i - y_j``, with its 98% confidence interval as R's
   ``wilcox.test(conf.int=TRUE)`` gives it and Kayenta asks of it: with fewer than 50 values on
   each side and no ties, exactly — ``[d(qu), d(nm-qu+1)]`` of the sorted differences, ``qu`` the
   1% quantile of U's exact null distribution (at least 1); otherwise by the normal
   approximation, ``qu = floor(nm/2 - z(0.99)·σ)`` with σ corrected for ties.
5. Bounds of ±25% of |estimate| (Kayenta's tolerance): ``High`` when the direction allows an
   increase and the interval's lower end is above the upper bound and the effect size reaches
   ``allowedIncrease``; ``Low`` symmetrically (upper end below the lower bound, effect size at most
   ``allowedDecrease``); ``Pass`` otherwise. The effect size is the mean ratio canary/baseline
   (``measure: meanRatio``, the default) or the common-language effect size P(x > y) + ½P(x = y)
   (``cles``); when it cannot be computed (a zero mean) it is not compared.
6. A critical metric classified High (effect ≥ ``criticalIncrease``) or Low (≤ ``criticalDecrease``),
   or Nodata, fails the canary: its score is 0.

Scores: a group's score is 100 × its Pass metrics over its metrics that have data (Pass, High,
Low, NodataFailMetric; Nodata counts nowhere); a group with none is left out. The summary is the
groups' scores weighted by ``classifier.groupWeights`` (renormalised over the groups left in; when
none of those has a positive weight, the mean); a metric in no group is in the group ``default``.

Where this differs from Kayenta: Kayenta adds Gaussian noise (σ = 1e-5 × the value) when both
samples are constant and different; here the differences are then all one value d, the interval
is [d, d], and the verdict is the same without randomness. Kayenta's asymptotic interval solves
R's equation numerically (with a continuity correction); the normal-approximation ranks above
can differ from it by one order statistic. Kayenta's IQR detector takes quartiles by Apache
Commons Math's default estimator; numpy's linear interpolation can differ on small samples.
Infinite values count as NaN here; Kayenta keeps them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np
from scipy import stats

TOLERANCE = 0.25
CONFIDENCE = 0.98
EXACT_LIMIT = 50
DEFAULT_GROUP = "default"
PASS, HIGH, LOW, NODATA, NODATA_FAIL = "Pass", "High", "Low", "Nodata", "NodataFailMetric"


@dataclass
class MetricVerdict:
    """One metric's classification and why, with the samples it was made from and the test's figures."""

    name: str
    classification: str
    reason: str
    critical: bool
    groups: list[str]
    canary: list[float]
    baseline: list[float]
    removed: dict = field(default_factory=dict)
    test: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def clean(values, nan_strategy: str) -> tuple[list[float], int]:
    """The sample without NaN/±Inf (``remove``) or with them as 0 (``replace``); and how many there were."""
    values = [float(v) for v in values]
    bad = sum(1 for v in values if not math.isfinite(v))
    if nan_strategy == "replace":
        return [v if math.isfinite(v) else 0.0 for v in values], bad
    return _finite(values), bad


def remove_outliers(values: list[float], factor: float) -> tuple[list[float], list[float]]:
    """The values inside ``[Q1 - factor·IQR, Q3 + factor·IQR]``, and those removed."""
    if len(values) < 2:
        return list(values), []
    q1, q3 = np.percentile(values, [25, 75])
    low, high = q1 - factor * (q3 - q1), q3 + factor * (q3 - q1)
    kept = [v for v in values if low <= v <= high]
    return kept, [v for v in values if not low <= v <= high]


@lru_cache(maxsize=256)
def _null_cdf(n: int, m: int) -> tuple[float, ...]:
    """P(U <= u), u = 0..nm, for U the count of pairs an x of ``n`` wins over a y of ``m`` (no ties, no effect)."""
    # p[i][j] as probabilities: the largest value is an x (prob i/(i+j), adding j wins) or a y.
    row = [np.ones(1) for _ in range(m + 1)]  # i = 0: U = 0 with certainty
    for i in range(1, n + 1):
        new = [np.ones(1)]  # j = 0: U = 0
        for j in range(1, m + 1):
            size = i * j + 1
            dist = np.zeros(size)
            with_x = row[j]  # (i-1, j), shifted by j
            dist[j:j + len(with_x)] += with_x * (i / (i + j))
            with_y = new[j - 1]  # (i, j-1)
            dist[:len(with_y)] += with_y * (j / (i + j))
            new.append(dist)
        row = new
    return tuple(np.cumsum(row[m]).tolist())


def _exact_rank(n: int, m: int, alpha: float) -> int:
    cdf = _null_cdf(n, m)
    rank = next(u for u, p in enumerate(cdf) if p >= alpha / 2 - 1e-12)
    return max(rank, 1)


def _normal_rank(x: list[float], y: list[float], alpha: float) -> int:
    n, m = len(x), len(y)
    total = n + m
    _, counts = np.unique(np.array(x + y), return_counts=True)
    ties = float(np.sum(counts ** 3 - counts))
    variance = n * m / 12 * ((total + 1) - ties / (total * (total - 1)))
    z = stats.norm.ppf(1 - alpha / 2)
    return max(int(math.floor(n * m / 2 - z * math.sqrt(max(variance, 0.0)))), 1)


def hodges_lehmann(x: list[float], y: list[float], confidence: float = CONFIDENCE) -> dict:
    """The estimate of the shift x − y (median of the differences) and its confidence interval, and how."""
    differences = np.sort(np.subtract.outer(np.array(x), np.array(y)).ravel())
    alpha = 1 - confidence
    exact = len(x) < EXACT_LIMIT and len(y) < EXACT_LIMIT and len(set(x) | set(y)) == len(x) + len(y)
    rank = _exact_rank(len(x), len(y), alpha) if exact else _normal_rank(x, y, alpha)
    rank = min(rank, len(differences))
    return {"estimate": float(np.median(differences)), "lower": float(differences[rank - 1]),
            "upper": float(differences[len(differences) - rank]), "rank": rank,
            "method": "exact" if exact else "normal approximation"}


def _effect_size(canary: list[float], baseline: list[float], measure: str) -> float:
    if measure == "cles":
        wins = np.subtract.outer(np.array(canary), np.array(baseline))
        return float(np.mean(wins > 0) + 0.5 * np.mean(wins == 0))
    control_mean = float(np.mean(baseline))
    return float(np.mean(canary)) / control_mean if control_mean != 0 else math.nan


def _mann_whitney(canary: list[float], baseline: list[float], settings: dict) -> dict:
    result = stats.mannwhitneyu(canary, baseline, alternative="two-sided")
    interval = hodges_lehmann(canary, baseline)
    bound = TOLERANCE * abs(interval["estimate"])
    effect = _effect_size(canary, baseline, settings["effectSize"]["measure"])
    mean_ratio = _effect_size(canary, baseline, "meanRatio")
    return {"u": float(result.statistic), "pValue": float(result.pvalue), **interval,
            "lowerBound": -bound, "upperBound": bound, "effectSize": None if math.isnan(effect) else effect,
            "deviation": None if math.isnan(mean_ratio) else mean_ratio, "confidence": CONFIDENCE}


def _compare(test: dict, direction: str, effect: dict) -> tuple[str, str]:
    size = test["effectSize"]
    if direction in ("increase", "either") and test["lower"] > test["upperBound"]:
        if size is None or size >= effect["allowedIncrease"]:
            return HIGH, (f"the canary is higher: the {CONFIDENCE:.0%} interval of the shift "
                          f"[{test['lower']:g}, {test['upper']:g}] is above +{test['upperBound']:g}")
        return PASS, (f"the canary is higher, but its effect size {size:g} is below the allowed increase "
                      f"{effect['allowedIncrease']:g}")
    if direction in ("decrease", "either") and test["upper"] < test["lowerBound"]:
        if size is None or size <= effect["allowedDecrease"]:
            return LOW, (f"the canary is lower: the {CONFIDENCE:.0%} interval of the shift "
                         f"[{test['lower']:g}, {test['upper']:g}] is below {test['lowerBound']:g}")
        return PASS, (f"the canary is lower, but its effect size {size:g} is above the allowed decrease "
                      f"{effect['allowedDecrease']:g}")
    return PASS, (f"no significant {'change' if direction == 'either' else direction}: the {CONFIDENCE:.0%} "
                  f"interval of the shift is [{test['lower']:g}, {test['upper']:g}]")


def _critical(classification: str, test: dict, effect: dict) -> bool:
    size = test.get("effectSize")
    if classification == HIGH:
        return size is None or size >= effect["criticalIncrease"]
    if classification == LOW:
        return size is None or size <= effect["criticalDecrease"]
    return False


def classify_metric(name: str, canary_values, baseline_values, settings: dict,
                    groups: list[str] | None = None) -> MetricVerdict:
    """Classify one metric from its canary and baseline samples, with settings as documents.metric_settings gives."""
    canary, canary_bad = clean(canary_values, settings["nanStrategy"])
    baseline, baseline_bad = clean(baseline_values, settings["nanStrategy"])
    removed = {"canaryNaN": canary_bad, "baselineNaN": baseline_bad, "canaryOutliers": [], "baselineOutliers": []}
    if settings["outliers"]["strategy"] == "remove":
        canary, removed["canaryOutliers"] = remove_outliers(canary, settings["outliers"]["outlierFactor"])
        baseline, removed["baselineOutliers"] = remove_outliers(baseline, settings["outliers"]["outlierFactor"])
    verdict = MetricVerdict(name, PASS, "", False, list(groups or [DEFAULT_GROUP]), canary, baseline, removed)
    critical = settings["critical"]
    if not canary or not baseline:
        if settings["nanStrategy"] == "replace":
            verdict.reason = "no data, and nanStrategy replace counts that as a pass"
        elif settings["mustHaveData"] and not critical:
            verdict.classification, verdict.reason = NODATA_FAIL, "no data, and the metric must have data"
        else:
            verdict.classification, verdict.critical = NODATA, critical
            verdict.reason = f"no data for the {'canary' if not canary else 'baseline'}"
        return verdict
    if sorted(canary) == sorted(baseline):
        verdict.reason = "the canary and baseline samples are identical"
        return verdict
    if len(set(canary) | set(baseline)) == 1:
        verdict.reason = "every sample has the same value"
        return verdict
    verdict.test = _mann_whitney(canary, baseline, settings)
    verdict.classification, verdict.reason = _compare(verdict.test, settings["direction"], settings["effectSize"])
    if critical and _critical(verdict.classification, verdict.test, settings["effectSize"]):
        verdict.critical = True
        verdict.reason += " (critical)"
    return verdict


def group_scores(verdicts: list[MetricVerdict]) -> dict[str, dict]:
    """Each group's score (100 × passes over metrics with data) and its counts; None for a group with no data."""
    groups: dict[str, dict] = {}
    for verdict in verdicts:
        for group in verdict.groups:
            counts = groups.setdefault(group, {"Pass": 0, "High": 0, "Low": 0, "Nodata": 0, "NodataFailMetric": 0})
            counts[verdict.classification] += 1
    scores = {}
    for group, counts in groups.items():
        with_data = counts[PASS] + counts[HIGH] + counts[LOW] + counts[NODATA_FAIL]
        scores[group] = {"score": 100.0 * counts[PASS] / with_data if with_data else None, "counts": counts}
    return scores


def summary_score(groups: dict[str, dict], weights: dict[str, float]) -> float:
    """The groups' scores weighted by ``weights`` into 0-100 (groups with no data left out)."""
    scored = {group: entry["score"] for group, entry in groups.items() if entry["score"] is not None}
    if not scored:
        return 0.0
    total = sum(float(weights.get(group, 0)) for group in scored)
    if total <= 0:
        return sum(scored.values()) / len(scored)
    return sum(score * float(weights.get(group, 0)) for group, score in scored.items()) / total


def judge(metrics: list[dict], samples: dict[str, tuple[list[float], list[float]]],
          weights: dict[str, float]) -> dict:
    """Judge one interval: ``metrics`` as (name, groups, settings) dicts, ``samples`` by name (canary, baseline).

    Returns the score (0-100, 0 on a critical failure), the group scores and every metric's verdict.
    """
    verdicts = [classify_metric(metric["name"], *samples[metric["name"]], metric["settings"], metric.get("groups"))
                for metric in metrics]
    groups = group_scores(verdicts)
    failed_critical = [verdict.name for verdict in verdicts if verdict.critical]
    score = 0.0 if failed_critical else summary_score(groups, weights)
    return {"score": round(score, 2), "groups": groups, "criticalFailures": failed_critical,
            "metrics": [verdict.as_dict() for verdict in verdicts]}
