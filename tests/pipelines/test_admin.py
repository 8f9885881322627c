"""Operators' admin pages: execution lists filter and search without a query per row."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.pipelines.services import do_save_pipeline, do_start_execution


@pytest.fixture
def executions(db):
    stages = [{"refId": "1", "name": "W", "type": "wait", "waitTime": 1}]
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "deliver", "stages": stages})
    return [do_start_execution(pipeline, user="alice") for _ in range(5)]


def list_queries(admin_client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_execution_list_costs_the_same_queries_for_few_or_many_rows(admin_client, executions):
    few = list_queries(admin_client, "/admin/pipelines/execution/?status__exact=NOT_STARTED")
    pipeline = executions[0].pipeline
    for _ in range(20):
        do_start_execution(pipeline)
    assert list_queries(admin_client, "/admin/pipelines/execution/?status__exact=NOT_STARTED") == few


def test_an_operator_finds_an_execution_by_id_and_opens_it(admin_client, executions):
    wanted = executions[2]
    response = admin_client.get("/admin/pipelines/execution/", {"q": str(wanted.id)})
    assert response.status_code == 200
    assert str(wanted.id) in response.content.decode()
    assert str(executions[0].id) not in response.content.decode()

    detail = admin_client.get(f"/admin/pipelines/execution/{wanted.id}/change/")
    assert detail.status_code == 200
    assert "alice" in detail.content.decode()


@pytest.mark.parametrize(
    "url",
    [
        "/admin/pipelines/application/",
        "/admin/pipelines/pipeline/",
        "/admin/pipelines/pipelinerevision/",
        "/admin/pipelines/stageexecution/",
        "/admin/pipelines/execution/?application__id__exact=1",
    ],
)
def test_every_list_page_opens(admin_client, executions, url):
    assert admin_client.get(url).status_code == 200
