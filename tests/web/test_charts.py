"""Pictures of runs: each pipeline's recent runs on the application page, stage durations on the pipeline's page."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.pipelines.choices import Status
from apps.pipelines.models import Execution, StageExecution
from apps.pipelines.views.charts import runs_chart, stage_durations_chart
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
