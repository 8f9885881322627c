"""The canary report as the execution page draws it: scores per interval and each metric's samples, as SVG.

Public function: :func:`report_context` (what templates/canary/_report.html needs for one stage:
one query). Drawn on the server like the other charts (apps/pipelines/views/charts.py), no script.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from apps.canary.models import CanaryAnalysis
from apps.pipelines.views.charts import BAR_GAP, BAR_WIDTH, CHART_HEIGHT, Bar, Chart

SERIES_WIDTH, SERIES_HEIGHT = 320, 80


@dataclass
class SeriesChart:
    """Canary and baseline samples as two polylines on one scale, and the range they span."""

    width: int
    height: int
    canary: str
    baseline: str
    low: str
    high: str


def _status(score: float, marginal: float, passing: float) -> str:
    return "SUCCEEDED" if score >= passing else "TERMINAL" if score < marginal else "FAILED_CONTINUE"


def scores_chart(intervals: list[dict], marginal: float, passing: float) -> Chart:
    """One bar per interval, as tall as its score (0-100), coloured by pass / marginal / fail."""
    chart = Chart(width=max(len(intervals), 1) * (BAR_WIDTH + BAR_GAP), height=CHART_HEIGHT, longest="100")
    for index, interval in enumerate(intervals):
        height = max(2, int(interval["score"] / 100 * CHART_HEIGHT))
        chart.bars.append(Bar(index * (BAR_WIDTH + BAR_GAP), CHART_HEIGHT - height, BAR_WIDTH, height,
                              _status(interval["score"], marginal, passing),
                              f"interval {interval['interval']}: score {interval['score']:g}"))
    return chart


def _points(values: list[float], low: float, span: float, count: int) -> str:
    step = SERIES_WIDTH / max(count - 1, 1)
    return " ".join(f"{index * step:.1f},{SERIES_HEIGHT - 2 - (value - low) / span * (SERIES_HEIGHT - 4):.1f}"
                    for index, value in enumerate(values))


def series_chart(canary: list[float], baseline: list[float]) -> SeriesChart:
    """The two samples in order, on a shared vertical scale."""
    finite = [v for v in canary + baseline if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    span = (high - low) or 1.0
    count = max(len(canary), len(baseline))
    return SeriesChart(SERIES_WIDTH, SERIES_HEIGHT, _points(canary, low, span, count),
                       _points(baseline, low, span, count), f"{low:.4g}", f"{high:.4g}")


def report_context(stage) -> dict:
    """The stage's analysis (None before its first interval), its score chart and the last interval's metrics."""
    analysis = CanaryAnalysis.objects.filter(stage=stage).first()
    if analysis is None or not analysis.intervals:
        return {"analysis": analysis}
    config = stage.context.get("canaryConfig") if isinstance(stage.context.get("canaryConfig"), dict) else {}
    thresholds = config.get("scoreThresholds") or {}
    try:
        marginal, passing = float(thresholds.get("marginal", 75)), float(thresholds.get("pass", 95))
    except (TypeError, ValueError):
        marginal, passing = 75.0, 95.0
    last = analysis.intervals[-1]
    metrics = [{**metric, "chart": series_chart(metric["canary"], metric["baseline"])} for metric in last["metrics"]]
    return {"analysis": analysis, "scores": scores_chart(analysis.intervals, marginal, passing), "last": last,
            "metrics": metrics, "marginal": marginal, "pass": passing}
