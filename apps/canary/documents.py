"""Canary configs in Kayenta's JSON format: validation with JSON pointers, and each metric's PromQL for a scope.

Public functions: :func:`config_problems` (why a document is not a canary config; [] when it
is), :func:`metric_settings` (a metric's analysis settings with Kayenta's defaults filled in) and
:func:`render_query` (a metric's PromQL for one scope).

A metric's ``query`` is Kayenta's Prometheus query (``type: prometheus``), in one of two forms:

- ``customInlineTemplate``: ``"PromQL:<query>"``, the query as written, with placeholders;
- ``metricName`` (with ``labelBindings``, a list of label matchers such as ``code=~"5.."``, or
  ``customFilterTemplate`` naming an entry of the document's ``templates``, and optional
  ``sumByFields``/``groupByFields``): ``sum by (fields) (metricName{<scope label>="${scope}", ...})``.
  The scope's label is ``server_group`` unless the scope's ``extendedScopeParams`` give
  ``scopeLabel``; with ``location``, ``locationLabel`` (default ``location``) is matched too.
  Kayenta's ``resourceType`` forms (``gce_instance``, ``aws_ec2_instance``) are refused: they
  name cloud labels no server group here has. Without ``sumByFields`` the selector is summed into
  one series (``sum(...)``): Kayenta judges each series it gets on its own, and here a query must
  give one. The selector is the metric's value as it is: for a counter, write a
  ``customInlineTemplate`` with ``rate(...)``.

Placeholders: ``${scope}``, ``${location}`` and any key of the scope's ``extendedScopeParams``.
Values put into the query are escaped as PromQL string contents.
"""

from __future__ import annotations

import re
from typing import Any

from apps.pipelines.problems import Problem, pointer_join

MAX_METRICS = 50
MAX_QUERY_LENGTH = 4000
MAX_NAME_LENGTH = 200
DIRECTIONS = ("increase", "decrease", "either")
NAN_STRATEGIES = ("remove", "replace")
OUTLIER_STRATEGIES = ("keep", "remove")
EFFECT_MEASURES = ("meanRatio", "cles")
JUDGES = ("NetflixACAJudge-v1.0", "NetflixACAJudge")
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.-]{0,100})\}")
LABEL_MATCHER = re.compile(r'^\s*[A-Za-z_][A-Za-z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*$')
LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
METRIC_NAME = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*$")
INLINE_PREFIX = "PromQL:"


class QueryUnresolved(Exception):
    """A metric's query names a placeholder the scope does not give, or cannot be built; the message says which."""


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value, limit: int = MAX_NAME_LENGTH) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and "\x00" not in value


def config_problems(document: Any) -> list[Problem]:
    """Why ``document`` is not a canary config Kayenta's NetflixACAJudge and this platform can run; [] when it is."""
    if not isinstance(document, dict):
        return [Problem("", "must be an object: a Kayenta canary config")]
    problems: list[Problem] = []
    if not _text(document.get("name")):
        problems.append(Problem("/name", f"is required: a name of at most {MAX_NAME_LENGTH} characters"))
    judge = document.get("judge")
    if judge is not None:
        if not isinstance(judge, dict):
            problems.append(Problem("/judge", "must be an object with the judge's name"))
        elif judge.get("name") not in (None, *JUDGES):
            problems.append(Problem("/judge/name", f"only {JUDGES[0]} judges here"))
    templates = document.get("templates") or {}
    if not isinstance(templates, dict) or not all(isinstance(v, str) for v in templates.values()):
        problems.append(Problem("/templates", "must be an object of template names to filter templates"))
        templates = {}
    metrics = document.get("metrics")
    groups: set[str] = set()
    if not isinstance(metrics, list) or not metrics:
        problems.append(Problem("/metrics", "must be a list of at least one metric"))
    elif len(metrics) > MAX_METRICS:
        problems.append(Problem("/metrics", f"has more than {MAX_METRICS} metrics"))
    else:
        names = set()
        for index, metric in enumerate(metrics):
            pointer = f"/metrics/{index}"
            problems.extend(_metric_problems(metric, pointer, templates))
            if isinstance(metric, dict):
                if metric.get("name") in names:
                    problems.append(Problem(f"{pointer}/name", "is the name of another metric"))
                names.add(metric.get("name"))
                groups.update(g for g in metric.get("groups") or [] if isinstance(g, str))
    problems.extend(_classifier_problems(document.get("classifier"), groups))
    return problems


def _metric_problems(metric, pointer: str, templates: dict) -> list[Problem]:
    if not isinstance(metric, dict):
        return [Problem(pointer, "must be an object: name, query, groups, analysisConfigurations")]
    problems = []
    if not _text(metric.get("name")):
        problems.append(Problem(f"{pointer}/name", f"is required: a name of at most {MAX_NAME_LENGTH} characters"))
    groups = metric.get("groups")
    if groups is not None and (not isinstance(groups, list) or not all(_text(g) for g in groups)):
        problems.append(Problem(f"{pointer}/groups", "must be a list of group names"))
    problems.extend(_query_problems(metric.get("query"), f"{pointer}/query", templates))
    analysis = metric.get("analysisConfigurations")
    if analysis is not None and not isinstance(analysis, dict):
        problems.append(Problem(f"{pointer}/analysisConfigurations", "must be an object with 'canary'"))
    elif isinstance(analysis, dict) and analysis.get("canary") is not None:
        problems.extend(_canary_problems(analysis["canary"], f"{pointer}/analysisConfigurations/canary"))
    return problems


def _query_problems(query, pointer: str, templates: dict) -> list[Problem]:
    if not isinstance(query, dict):
        return [Problem(pointer, "is required: a Prometheus query (customInlineTemplate or metricName)")]
    kind = query.get("type", query.get("serviceType"))
    if kind != "prometheus":
        return [Problem(f"{pointer}/type", f"{kind!r} is not a metrics source here; only 'prometheus' is")]
    inline, name = query.get("customInlineTemplate"), query.get("metricName")
    if inline:
        if not isinstance(inline, str) or not inline.startswith(INLINE_PREFIX):
            return [Problem(f"{pointer}/customInlineTemplate", f"must be a string starting with '{INLINE_PREFIX}'")]
        if len(inline) > MAX_QUERY_LENGTH or not inline[len(INLINE_PREFIX):].strip():
            return [Problem(f"{pointer}/customInlineTemplate",
                            f"must hold a PromQL query of at most {MAX_QUERY_LENGTH} characters")]
        return []
    if not isinstance(name, str) or not METRIC_NAME.match(name):
        return [Problem(pointer, "needs customInlineTemplate ('PromQL:...') or a metricName (a Prometheus metric)")]
    problems = []
    if query.get("resourceType") not in (None, ""):
        problems.append(Problem(f"{pointer}/resourceType", "cloud resource types are not supported here: leave it "
                                "out (the scope is matched on the server_group label) or write a customInlineTemplate"))
    bindings = query.get("labelBindings") or []
    if not isinstance(bindings, list):
        problems.append(Problem(f"{pointer}/labelBindings", 'must be a list of label matchers such as code=~"5.."'))
    else:
        problems.extend(Problem(f"{pointer}/labelBindings/{i}", 'is not a label matcher such as code=~"5.."')
                        for i, binding in enumerate(bindings)
                        if not isinstance(binding, str) or not LABEL_MATCHER.match(binding))
    template = query.get("customFilterTemplate")
    if template not in (None, "") and template not in templates:
        problems.append(Problem(f"{pointer}/customFilterTemplate", f"names no entry of /templates: {template!r}"))
    for key in ("sumByFields", "groupByFields"):
        fields = query.get(key)
        if fields is not None and (not isinstance(fields, list) or not all(
                isinstance(f, str) and LABEL_NAME.match(f) for f in fields)):
            problems.append(Problem(f"{pointer}/{key}", "must be a list of label names"))
    return problems


def _canary_problems(canary, pointer: str) -> list[Problem]:
    if not isinstance(canary, dict):
        return [Problem(pointer, "must be an object: direction, critical, nanStrategy, effectSize, outliers")]
    problems = []
    for key, allowed in (("direction", DIRECTIONS), ("nanStrategy", NAN_STRATEGIES)):
        if canary.get(key) is not None and canary[key] not in allowed:
            problems.append(Problem(f"{pointer}/{key}", f"must be one of {', '.join(allowed)}"))
    for key in ("critical", "mustHaveData"):
        if canary.get(key) is not None and not isinstance(canary[key], bool):
            problems.append(Problem(f"{pointer}/{key}", "must be true or false"))
    effect = canary.get("effectSize")
    if effect is not None:
        if not isinstance(effect, dict):
            problems.append(Problem(f"{pointer}/effectSize", "must be an object: allowedIncrease, allowedDecrease, "
                                    "criticalIncrease, criticalDecrease, measure"))
        else:
            problems.extend(Problem(f"{pointer}/effectSize/{key}", "must be a positive number")
                            for key in ("allowedIncrease", "allowedDecrease", "criticalIncrease", "criticalDecrease")
                            if effect.get(key) is not None and not (_number(effect[key]) and effect[key] > 0))
            if effect.get("measure") is not None and effect["measure"] not in EFFECT_MEASURES:
                problems.append(Problem(f"{pointer}/effectSize/measure",
                                        f"must be one of {', '.join(EFFECT_MEASURES)}"))
    outliers = canary.get("outliers")
    if outliers is not None:
        if not isinstance(outliers, dict):
            problems.append(Problem(f"{pointer}/outliers", "must be an object: strategy, outlierFactor"))
        else:
            if outliers.get("strategy") is not None and outliers["strategy"] not in OUTLIER_STRATEGIES:
                problems.append(Problem(f"{pointer}/outliers/strategy", "must be keep or remove"))
            factor = outliers.get("outlierFactor")
            if factor is not None and not (_number(factor) and 0 < factor <= 100):
                problems.append(Problem(f"{pointer}/outliers/outlierFactor", "must be a number above 0, at most 100"))
    return problems


def _classifier_problems(classifier, groups: set[str]) -> list[Problem]:
    if classifier is None:
        return []
    if not isinstance(classifier, dict):
        return [Problem("/classifier", "must be an object with groupWeights")]
    weights = classifier.get("groupWeights")
    if weights is None:
        return []
    if not isinstance(weights, dict):
        return [Problem("/classifier/groupWeights", "must be an object of group names to weights")]
    problems = [Problem(pointer_join("/classifier/groupWeights", group), "must be a number, 0 or more")
                for group, weight in weights.items() if not (_number(weight) and weight >= 0)]
    problems.extend(Problem(pointer_join("/classifier/groupWeights", group), "no metric is in this group")
                    for group in weights if group not in groups)
    return problems


# --- Reading a valid config ---------------------------------------------------------------------

def metric_settings(metric: dict) -> dict:
    """The metric's canary analysis settings, with Kayenta's defaults for what it leaves out."""
    canary = (metric.get("analysisConfigurations") or {}).get("canary") or {}
    effect = canary.get("effectSize") or {}
    outliers = canary.get("outliers") or {}
    return {
        "direction": canary.get("direction") or "either",
        "critical": bool(canary.get("critical", False)),
        "mustHaveData": bool(canary.get("mustHaveData", False)),
        "nanStrategy": canary.get("nanStrategy") or "remove",
        "effectSize": {
            "allowedIncrease": float(effect.get("allowedIncrease", 1.0)),
            "allowedDecrease": float(effect.get("allowedDecrease", 1.0)),
            "criticalIncrease": float(effect.get("criticalIncrease", 1.0)),
            "criticalDecrease": float(effect.get("criticalDecrease", 1.0)),
            "measure": effect.get("measure") or "meanRatio",
        },
        "outliers": {"strategy": outliers.get("strategy") or "keep",
                     "outlierFactor": float(outliers.get("outlierFactor", 3.0))},
    }


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _substitute(text: str, values: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        key = match.group(1)
        if key not in values:
            raise QueryUnresolved(f"${{{key}}} is not given by the scope (known: {', '.join(sorted(values))})")
        return _escaped(values[key])

    return PLACEHOLDER.sub(replace, text)


def render_query(metric: dict, templates: dict, *, scope: str, location: str = "",
                 extended: dict[str, str] | None = None) -> str:
    """The metric's PromQL for one scope (a server group), its location and its extendedScopeParams."""
    extended = {str(k): str(v) for k, v in (extended or {}).items()}
    values = {**extended, "scope": scope, "location": location}
    query = metric["query"]
    inline = query.get("customInlineTemplate")
    if inline:
        return _substitute(inline[len(INLINE_PREFIX):].strip(), values)
    matchers = [f'{extended.get("scopeLabel", "server_group")}="{_escaped(scope)}"']
    if location:
        matchers.append(f'{extended.get("locationLabel", "location")}="{_escaped(location)}"')
    template = query.get("customFilterTemplate")
    if template:
        matchers.append(_substitute(templates[template], values))
    matchers.extend(_substitute(binding, values) for binding in query.get("labelBindings") or [])
    selector = f"{query['metricName']}{{{','.join(matchers)}}}"
    fields = list(query.get("sumByFields") or []) + list(query.get("groupByFields") or [])
    return f"sum by ({','.join(fields)}) ({selector})" if fields else f"sum({selector})"
