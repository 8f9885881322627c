"""Each metric's PromQL for a scope: placeholders filled and escaped, Kayenta's metricName form built."""

import pytest

from apps.canary.documents import QueryUnresolved, render_query

INLINE = {"name": "errors", "query": {"type": "prometheus", "customInlineTemplate":
                                      'PromQL:sum(rate(x{server_group="${scope}",zone="${location}",'
                                      'team="${team}"}[1m]))'}}
BY_NAME = {"name": "requests", "query": {"type": "prometheus", "metricName": "http_requests_total",
                                         "labelBindings": ['code=~"5.."'], "customFilterTemplate": "job"}}


def test_an_inline_template_gets_the_scope_location_and_extended_params_escaped():
    query = render_query(INLINE, {}, scope='shop-v002"}or vector(1)#', location="eu", extended={"team": "web"})
    assert query == ('sum(rate(x{server_group="shop-v002\\"}or vector(1)#",zone="eu",team="web"}[1m]))')


def test_a_placeholder_the_scope_does_not_give_is_named():
    with pytest.raises(QueryUnresolved, match=r"\$\{team\}"):
        render_query(INLINE, {}, scope="shop-v002")


def test_the_metric_name_form_matches_the_scope_label_the_bindings_and_the_filter_template():
    query = render_query(BY_NAME, {"job": 'job="${job}"'}, scope="shop-v002", extended={"job": "web"})
    assert query == 'sum(http_requests_total{server_group="shop-v002",job="web",code=~"5.."})'
    by_code = {**BY_NAME, "query": {**BY_NAME["query"], "sumByFields": ["code"], "customFilterTemplate": None}}
    assert render_query(by_code, {}, scope="g", location="eu", extended={"scopeLabel": "asg"}) == \
        'sum by (code) (http_requests_total{asg="g",location="eu",code=~"5.."})'
