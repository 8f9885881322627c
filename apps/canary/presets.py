"""Ready-made canary configs: HTTP error rate and latency for a server group exporting the usual metrics.

The preset needs no editing for a server group whose instances export
``http_requests_total`` (a counter labelled ``code``) and ``http_request_duration_seconds``
(a histogram or a summary: its ``_sum`` and ``_count``), scraped by Prometheus with the label
``server_group`` set to the server group's name (the scope). Error rate is critical: a canary
answering more 5xx than its baseline fails at once.
"""

from __future__ import annotations

import copy

WINDOW = "30s"

HTTP_PRESET = {
    "name": "http-error-rate-and-latency",
    "description": "Share of 5xx answers (critical) and mean request latency, canary against baseline.",
    "configVersion": "1",
    "applications": [],
    "judge": {"name": "NetflixACAJudge-v1.0", "judgeConfigurations": {}},
    "metrics": [
        {
            "name": "http-error-rate",
            "query": {
                "type": "prometheus",
                "serviceType": "prometheus",
                "customInlineTemplate": (
                    f'PromQL:sum(rate(http_requests_total{{server_group="${{scope}}",code=~"5.."}}[{WINDOW}]))'
                    f' / sum(rate(http_requests_total{{server_group="${{scope}}"}}[{WINDOW}]))'),
            },
            "groups": ["Errors"],
            "analysisConfigurations": {"canary": {"direction": "increase", "critical": True, "nanStrategy": "remove"}},
            "scopeName": "default",
        },
        {
            "name": "http-latency-mean",
            "query": {
                "type": "prometheus",
                "serviceType": "prometheus",
                "customInlineTemplate": (
                    f'PromQL:sum(rate(http_request_duration_seconds_sum{{server_group="${{scope}}"}}[{WINDOW}]))'
                    f' / sum(rate(http_request_duration_seconds_count{{server_group="${{scope}}"}}[{WINDOW}]))'),
            },
            "groups": ["Latency"],
            "analysisConfigurations": {"canary": {"direction": "increase", "nanStrategy": "remove",
                                                  "effectSize": {"allowedIncrease": 1.2}}},
            "scopeName": "default",
        },
    ],
    "templates": {},
    "classifier": {"groupWeights": {"Errors": 70, "Latency": 30}, "scoreThresholds": {"marginal": 50, "pass": 75}},
}

PRESETS = {HTTP_PRESET["name"]: HTTP_PRESET}


def preset(name: str) -> dict | None:
    """A copy of the preset ``name``, or None."""
    found = PRESETS.get(name)
    return copy.deepcopy(found) if found is not None else None
