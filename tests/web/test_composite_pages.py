"""The execution page and the API's execution detail with composite stages: nesting, actions, query counts.

Executions are started in this process (the engine's first transaction runs
here; its jobs go to Redis, where no worker takes them), then shaped by hand.
"""

import re
from html import unescape

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.pipelines import engine
from apps.pipelines.choices import Status
from apps.pipelines.models import Execution, StageExecution
from apps.pipelines.services import do_save_pipeline, do_start_execution
from tests.pipelines import composite_stages


@pytest.fixture(autouse=True)
def composite_types():
    with composite_stages.registered():
        yield


@pytest.fixture
def root(transactional_db, clean_redis):
    client = Client()
    client.force_login(User.objects.create_superuser("root"))
    return client


def started(name: str, stages: list[dict]) -> Execution:
    pipeline, _ = do_save_pipeline({"application": "shop", "name": name, "stages": stages})
    execution = do_start_execution(pipeline, user="root")
    engine.start_execution(execution.id)
    return Execution.objects.get(id=execution.id)


def composites(count: int) -> list[dict]:
    return [{"refId": str(n), "name": f"Deploy {n}", "type": "testComposite"} for n in range(1, count + 1)]


def row_refs(html: str) -> list[tuple[str, str]]:
    """(refId, depth) of each row of the stage list, in order."""
    table = html[html.index('id="stage-table"'):]
    rows = []
    for tag in re.findall(r"<tr data-stage-id=[^>]*>", table):
        depth = re.search(r'data-depth="(\d)"', tag)
        rows.append((unescape(re.search(r'data-ref-id="([^"]+)"', tag).group(1)), depth.group(1) if depth else "0"))
    return rows


def test_the_page_lists_synthetic_stages_under_their_parent_and_draws_only_top_level_ones(root):
    execution = started("deliver", composites(1))

    html = root.get(f"/executions/{execution.id}/").content.decode()

    assert row_refs(html) == [("1", "0"), ("1<1", "1"), ("1<1<1", "2"), ("1<2", "1"), ("1>1", "1")]
    graph = html[html.index('id="stage-graph"'):html.index('id="stage-table"')]
    assert re.findall(r'class="node [^"]*"[^>]*data-ref-id="([^"]+)"', graph.replace("\n", " ")) == ["1"]
    assert 'data-synthetic-owner="STAGE_AFTER"' in html and "after ↳" in html


def test_restart_is_offered_on_a_synthetic_stage_only_as_the_service_allows(root):
    execution = started("deliver", composites(1))
    StageExecution.objects.filter(execution=execution, ref_id="1<1<1").update(status=Status.SUCCEEDED)

    html = root.get(f"/executions/{execution.id}/").content.decode()
    assert "data-action=\"restart\"" not in html, "its parents still run"

    Execution.objects.filter(id=execution.id).update(status=Status.TERMINAL)
    StageExecution.objects.filter(execution=execution).exclude(ref_id="1<1<1").update(status=Status.TERMINAL)
    html = root.get(f"/executions/{execution.id}/").content.decode()
    row = re.search(r'<tr[^>]*data-ref-id="1&lt;1&lt;1".*?</tr>', html, re.S).group(0)
    assert 'data-action="restart"' in row


@pytest.mark.parametrize("url", ["/executions/{}/", "/api/executions/{}/"])
def test_the_page_and_the_api_detail_cost_the_same_queries_with_synthetic_stages(root, url):
    def queries(execution) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = root.get(url.format(execution.id))
        assert response.status_code == 200
        return len(captured)

    plain = queries(started("plain", [{"refId": "1", "name": "Wait", "type": "wait", "waitTime": 60}]))
    one = queries(started("one", composites(1)))
    three = queries(started("three", composites(3)))

    assert plain == one == three
