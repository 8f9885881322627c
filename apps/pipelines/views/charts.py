"""Small charts drawn on the server as SVG: runs over time (duration and outcome) and stage durations per run.

The pages hand in rows they already loaded (no query here); each bar is one
``<rect>``, coloured by status through the stylesheet, written here rather
than by template nodes (an application page draws a hundred of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from django.utils.safestring import SafeString, mark_safe

from apps.pipelines.views.common import duration_ms, format_duration

CHART_HEIGHT = 64
BAR_WIDTH = 14
BAR_GAP = 4
MIN_BAR = 2  # a run of no time at all still shows as a sliver of its colour
BAR_SVG = ('<rect class="status-{status}" x="{x}" y="{y}" width="{width}" height="{height}" '
           'data-status="{status}"><title>{title}</title></rect>')


@dataclass
class Bar:
    """One bar (or a segment of one): where it is, its status and what its tooltip says."""

    x: int
    y: int
    width: int
    height: int
    status: str
    title: str
    href: str = ""

    @property
    def svg(self) -> SafeString:
        """The bar as SVG, inside a link when it has one; every text escaped."""
        rect = BAR_SVG.format(status=escape(self.status), x=int(self.x), y=int(self.y), width=int(self.width),
                              height=int(self.height), title=escape(self.title))
        if self.href:
            rect = f'<a href="{escape(self.href)}">{rect}</a>'
        return mark_safe(rect)  # noqa: S308 (every text escaped above, the numbers made ints)


@dataclass
class Chart:
    """The SVG's size, its bars and the longest duration it shows (the scale)."""

    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    longest: str = ""


def _scale(milliseconds: list[int]) -> float:
    return (CHART_HEIGHT - MIN_BAR) / max(max(milliseconds, default=0), 1)


def runs_chart(executions: list) -> Chart:
    """The executions (any order), oldest on the left: each a bar as tall as it took, coloured by its outcome."""
    runs = sorted(executions, key=lambda execution: execution.created_at)
    durations = [duration_ms(run.start_time, run.end_time) or 0 for run in runs]
    scale = _scale(durations)
    chart = Chart(width=max(len(runs), 1) * (BAR_WIDTH + BAR_GAP), height=CHART_HEIGHT,
                  longest=format_duration(max(durations, default=0)))
    for index, (run, took) in enumerate(zip(runs, durations, strict=True)):
        height = MIN_BAR + int(took * scale)
        title = f"{run.created_at:%Y-%m-%d %H:%M} — {run.status} — {format_duration(took) or 'not started'}"
        chart.bars.append(Bar(index * (BAR_WIDTH + BAR_GAP), CHART_HEIGHT - height, BAR_WIDTH, height, run.status,
                              title, href=f"/executions/{run.id}/"))
    return chart


def stage_durations_chart(executions: list) -> Chart:
    """The executions oldest first, each a stack of its top-level stages, each segment as tall as the stage took."""
    runs = sorted(executions, key=lambda execution: execution.created_at)
    stages_of = {run.id: [stage for stage in run.stages.all() if stage.start_time is not None] for run in runs}
    totals = [sum(duration_ms(s.start_time, s.end_time) or 0 for s in stages_of[run.id]) for run in runs]
    scale = _scale(totals)
    chart = Chart(width=max(len(runs), 1) * (BAR_WIDTH * 2 + BAR_GAP), height=CHART_HEIGHT,
                  longest=format_duration(max(totals, default=0)))
    for index, run in enumerate(runs):
        top = CHART_HEIGHT
        for stage in stages_of[run.id]:
            took = duration_ms(stage.start_time, stage.end_time) or 0
            height = max(1, int(took * scale))
            top -= height
            chart.bars.append(Bar(index * (BAR_WIDTH * 2 + BAR_GAP), top, BAR_WIDTH * 2, height, stage.status,
                                  f"{run.created_at:%Y-%m-%d %H:%M} — {stage.name}: {format_duration(took)}",
                                  href=f"/executions/{run.id}/?stage={stage.id}"))
    return chart
