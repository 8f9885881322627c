"""Pictures of runs: each pipeline's recent runs on the application page, stage durations on the pipeline's page."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.template import Context, Template
from django.test import Client
from django.utils import timezone

from apps.pipelines.choices import Status
from apps.pipelines.models import Execution, StageExecution
from apps.pipelines.views.charts import Bar, runs_chart, stage_durations_chart
from apps.pipelines.views.common import moment_texts
from tests.scenarios import count_queries, start

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def finished(pipeline, status: str, seconds: int) -> Execution:
    """An execution that ran ``seconds`` and ended ``status``, its first stage taking all of it."""
    execution = start(pipeline)
    began = timezone.now() - timedelta(seconds=seconds + 5)
    ended = began + timedelta(seconds=seconds)
    Execution.objects.filter(id=execution.id).update(status=status, start_time=began, end_time=ended)
    StageExecution.objects.filter(execution=execution, ref_id="1").update(status=status, start_time=began,
                                                                          end_time=ended)
    return Execution.objects.get(id=execution.id)


def test_a_longer_run_is_a_taller_bar_in_its_outcomes_colour(shop):
    short, long = finished(shop, Status.SUCCEEDED, 10), finished(shop, Status.TERMINAL, 40)

    chart = runs_chart([long, short])

    assert [bar.status for bar in chart.bars] == [Status.SUCCEEDED, Status.TERMINAL]  # oldest first
    assert chart.bars[1].height > chart.bars[0].height * 3
    assert chart.longest == "40s"
    assert chart.bars[0].href == f"/executions/{short.id}/"


def test_the_application_page_draws_each_pipelines_runs_at_no_extra_query(people, shop):
    for seconds in (5, 20, 9):
        finished(shop, Status.SUCCEEDED, seconds)
    client = client_for(people["bob"])

    html = client.get("/applications/shop/").content.decode()
    few = count_queries(client, "/applications/shop/")
    finished(shop, Status.TERMINAL, 30)
    more = count_queries(client, "/applications/shop/")

    chart = re.search(rf'id="runs-{shop.id}".*?</figure>', html, re.S).group(0)
    assert chart.count("<rect") == 3 and 'data-status="SUCCEEDED"' in chart
    assert more == few


def test_the_pipeline_page_stacks_the_stage_durations_of_its_last_runs(people, shop):
    for seconds in (5, 20):
        finished(shop, Status.SUCCEEDED, seconds)
    client = client_for(people["bob"])

    html = client.get(f"/pipelines/{shop.id}/edit/").content.decode()
    few = count_queries(client, f"/pipelines/{shop.id}/edit/")
    finished(shop, Status.TERMINAL, 30)
    assert count_queries(client, f"/pipelines/{shop.id}/edit/") == few
    chart = stage_durations_chart(list(Execution.objects.filter(pipeline=shop)))

    section = re.search(r'id="stage-durations".*?</section>', html, re.S).group(0)
    assert section.count("<rect") == 2 and "Stage durations of the last runs" in section
    assert chart.bars[0].height < chart.bars[1].height


def test_a_pipeline_never_run_says_so(people, shop):
    html = client_for(people["bob"]).get(f"/pipelines/{shop.id}/edit/").content.decode()

    assert "No runs yet." in html


def test_a_bars_tooltip_and_link_are_escaped_and_a_bar_without_a_link_has_none():
    linked = Bar(0, 10, 14, 54, 'SUCCEEDED" onload="x', "<script>alert(1)</script> & more", href='/e/?a="b"')
    plain = Bar(18, 0, 14, 64, "TERMINAL", "interval 1")

    assert linked.svg == (
        '<a href="/e/?a=&quot;b&quot;"><rect class="status-SUCCEEDED&quot; onload=&quot;x" x="0" y="10" '
        'width="14" height="54" data-status="SUCCEEDED&quot; onload=&quot;x"><title>&lt;script&gt;alert(1)'
        "&lt;/script&gt; &amp; more</title></rect></a>"
    )
    assert plain.svg.startswith('<rect class="status-TERMINAL" x="18"') and "<a" not in plain.svg


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_an_executions_moment_reads_as_the_date_filter_writes_it(zone):
    moment = datetime(2026, 3, 8, 6, 59, 1, 123456, tzinfo=UTC)  # New York's clocks go forward that night

    with timezone.override(zone):
        texts = moment_texts(moment)
        filtered = Template('{{ when|date:"M j, H:i:s" }}|{{ when|date:"c" }}').render(Context({"when": moment}))

    assert "|".join(texts) == filtered
