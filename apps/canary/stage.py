"""The ``kayentaCanary`` stage (Spinnaker's): canary analysis over several intervals, each scored by the judge.

The stage definition holds Spinnaker's ``canaryConfig``::

    {"canaryConfigId": "<id or name of a config of the application>",
     "lifetimeDuration": "PT1H" | "lifetimeHours": 1 | "lifetimeSeconds": 120,
     "beginCanaryAnalysisAfterMins": 0 | "beginCanaryAnalysisAfterSeconds": 0,
     "canaryAnalysisIntervalMins": 15 | "canaryAnalysisIntervalSeconds": 30,
     "scopes": [{"scopeName": "default", "controlScope": "app-v001", "experimentScope": "app-v002",
                 "controlLocation": "", "experimentLocation": "", "step": 10, "extendedScopeParams": {}}],
     "scoreThresholds": {"marginal": 50, "pass": 75},
     "metricsAccountName": "prometheus"}

``*Seconds`` fields (this platform's, for tests and demos) take the place of their minutes/hours
forms. The lifetime is cut into ``lifetime / interval`` intervals (one when no interval is
given); interval *k* is judged on the samples from the analysis' start to its end (Orca's
cumulative windows), as soon as it has ended: the stage returns "still running" until then
and is polled again, never holding a worker. A score below ``marginal`` ends the stage at once
as failed; the last interval's score must reach ``pass``. Each interval's samples, verdicts and
score are kept in a :class:`~apps.canary.models.CanaryAnalysis` row (the report); the stage's
outputs hold the scores and each metric's classification, and ``canaryAnalysisId``.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from apps.accounts.permissions import PermissionRefused
from apps.canary.documents import QueryUnresolved, metric_settings, render_query
from apps.canary.judge import judge
from apps.canary.models import CanaryAnalysis, CanaryConfig
from apps.canary.prometheus import QueryFailed, account_named, query_range
from apps.canary.services import check_use_account
from apps.pipelines.checks import execution_actor
from apps.pipelines.choices import Status
from apps.pipelines.problems import Problem
from apps.pipelines.stages.base import StageField, StageType, TaskResult, register

ISO_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
MAX_LIFETIME_SECONDS = 30 * 24 * 3600
MAX_INTERVALS = 500
MAX_QUERY_RETRIES = 5
RETRY_SECONDS = 5.0
DEFAULT_STEP = 10


class CanaryRefused(Exception):
    """The analysis cannot run as defined (no such config or account, no permission, bad timing)."""


def _is_expression(value) -> bool:
    return isinstance(value, str) and "${" in value


def iso_seconds(value: str) -> float | None:
    """Seconds of an ISO-8601 duration such as PT1H30M or P1D; None when it is not one."""
    match = ISO_DURATION.match(value.strip()) if isinstance(value, str) else None
    if not match or not any(match.groups()) or value.strip().endswith("T"):
        return None
    days, hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def _number(config: dict, key: str) -> float | None:
    value = config.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise CanaryRefused(f"canaryConfig.{key} must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CanaryRefused(f"canaryConfig.{key} must be a number, not {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise CanaryRefused(f"canaryConfig.{key} must be a number, 0 or more")
    return number


def timing(config: dict) -> tuple[float, float, int]:
    """(seconds before the analysis begins, seconds per interval, number of intervals) of a canaryConfig."""
    lifetime = _number(config, "lifetimeSeconds")
    if lifetime is None and config.get("lifetimeDuration"):
        lifetime = iso_seconds(config["lifetimeDuration"])
        if lifetime is None:
            raise CanaryRefused(f"canaryConfig.lifetimeDuration {config['lifetimeDuration']!r} is not an "
                                "ISO-8601 duration such as PT1H")
    if lifetime is None and (hours := _number(config, "lifetimeHours")) is not None:
        lifetime = hours * 3600
    if not lifetime or lifetime > MAX_LIFETIME_SECONDS:
        raise CanaryRefused("canaryConfig needs a lifetime (lifetimeDuration, lifetimeHours or lifetimeSeconds) "
                            f"above 0 and at most {MAX_LIFETIME_SECONDS // 86400} days")
    begin = _number(config, "beginCanaryAnalysisAfterSeconds")
    if begin is None:
        begin = (_number(config, "beginCanaryAnalysisAfterMins") or 0) * 60
    interval = _number(config, "canaryAnalysisIntervalSeconds")
    if interval is None and (minutes := _number(config, "canaryAnalysisIntervalMins")) is not None:
        interval = minutes * 60
    if not interval or interval > lifetime:
        interval = lifetime
    count = int(lifetime // interval)
    if count > MAX_INTERVALS:
        raise CanaryRefused(f"canaryConfig gives {count} intervals; at most {MAX_INTERVALS}")
    return begin, interval, count


def _thresholds(config: dict, document: dict) -> tuple[float, float]:
    given = config.get("scoreThresholds") or (document.get("classifier") or {}).get("scoreThresholds") or {}
    try:
        marginal, passing = float(given.get("marginal", 75)), float(given.get("pass", 95))
    except (TypeError, ValueError, AttributeError):
        raise CanaryRefused("canaryConfig.scoreThresholds must hold numbers: marginal and pass") from None
    if not (0 <= marginal <= passing <= 100):
        raise CanaryRefused("canaryConfig.scoreThresholds: 0 <= marginal <= pass <= 100")
    return marginal, passing


def _scope_problems(scopes, pointer: str) -> list[Problem]:
    if _is_expression(scopes):
        return []
    if not isinstance(scopes, list) or not scopes:
        return [Problem(pointer, "must be a list of scopes, each with controlScope and experimentScope")]
    problems = []
    for index, scope in enumerate(scopes):
        where = f"{pointer}/{index}"
        if not isinstance(scope, dict):
            problems.append(Problem(where, "must be an object with controlScope and experimentScope"))
            continue
        problems.extend(Problem(f"{where}/{key}", "is required: a server group's name")
                        for key in ("controlScope", "experimentScope")
                        if not isinstance(scope.get(key), str) or not scope.get(key))
        step = scope.get("step")
        if step is not None and not _is_expression(step) and (
                isinstance(step, bool) or not isinstance(step, int | float) or step <= 0):
            problems.append(Problem(f"{where}/step", "must be a number of seconds above 0"))
        extended = scope.get("extendedScopeParams")
        if extended is not None and not _is_expression(extended) and not isinstance(extended, dict):
            problems.append(Problem(f"{where}/extendedScopeParams", "must be an object of names to values"))
    return problems


@register
class KayentaCanaryStage(StageType):
    type_name = "kayentaCanary"
    label = "Canary Analysis"
    description = ("Compares a canary server group's metrics with its baseline's over several intervals, "
                   "scoring each; fails when a score is below marginal or the last is below pass.")
    fields = (StageField("canaryConfig", "object", label="Canary config", required=True,
                         help="canaryConfigId, lifetimeDuration, canaryAnalysisIntervalMins, scopes, "
                              "scoreThresholds, metricsAccountName (Spinnaker's fields)."),)
    performs_io = True
    panel_template = "canary/_report.html"

    def panel_context(self, stage) -> dict:
        from apps.canary.report import report_context  # the page's drawing, not needed to run the stage

        return report_context(stage)

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        config = stage.get("canaryConfig")
        if config is None or _is_expression(config):
            return []
        if not isinstance(config, dict):
            return [Problem(f"{pointer}/canaryConfig", "must be an object (Spinnaker's canaryConfig)")]
        problems = []
        if config.get("canaryConfigId") in (None, ""):
            problems.append(Problem(f"{pointer}/canaryConfig/canaryConfigId",
                                    "is required: a canary config's id or name"))
        problems.extend(_scope_problems(config.get("scopes"), f"{pointer}/canaryConfig/scopes"))
        if not any(_is_expression(v) for v in config.values()):
            try:
                timing(config)
                if config.get("scoreThresholds") is not None:
                    _thresholds(config, {})
            except CanaryRefused as refused:
                problems.append(Problem(f"{pointer}/canaryConfig", str(refused)))
        return problems

    def run(self, stage, scope, runtime) -> TaskResult:
        try:
            return self._run(stage)
        except CanaryRefused as refused:
            CanaryAnalysis.objects.filter(stage=stage).update(status="TERMINAL")
            return TaskResult.failed(str(refused))

    def cancel(self, stage, runtime) -> None:
        CanaryAnalysis.objects.filter(stage=stage, status="RUNNING").update(status="CANCELED")

    # --- The steps ---------------------------------------------------------------------------

    def _run(self, stage) -> TaskResult:
        config = stage.context.get("canaryConfig")
        if not isinstance(config, dict):
            raise CanaryRefused("canaryConfig must be an object")
        canary_config = self._config(stage, config.get("canaryConfigId"))
        account = account_named(config.get("metricsAccountName"))
        if account is None:
            raise CanaryRefused(f"canaryConfig.metricsAccountName: there is no metrics account "
                                f"{config.get('metricsAccountName') or 'prometheus'!r} (set PROMETHEUS_URL or add one)")
        try:
            check_use_account(execution_actor(stage.execution), account, field="metricsAccountName")
        except PermissionRefused as refused:
            raise CanaryRefused(f"canaryConfig.metricsAccountName: {refused.message}") from None
        begin, interval, count = timing(config)
        marginal, passing = _thresholds(config, canary_config.document)
        analysis, _ = CanaryAnalysis.objects.get_or_create(stage=stage, defaults={
            "application_id": stage.execution.application_id, "config_name": canary_config.name,
            "config": canary_config.document, "account_name": account.name})
        if analysis.status != "RUNNING":
            return TaskResult.failed(f"the analysis is {analysis.status}")
        start = stage.start_time.timestamp() + begin
        done = len(analysis.intervals)
        end = start + (done + 1) * interval
        now = time.time()
        if now < end:
            return TaskResult.running(retry_after=end - now, context={"canaryAnalysisId": analysis.pk})
        try:
            verdict = self._judge(analysis, config, account, start, end)
        except QueryFailed as failed:
            retries = int(stage.context.get("canaryQueryRetries") or 0)
            if failed.retryable and retries < MAX_QUERY_RETRIES:
                return TaskResult.running(retry_after=RETRY_SECONDS, context={"canaryQueryRetries": retries + 1})
            raise CanaryRefused(f"interval {done + 1}: {failed}") from None
        return self._decide(analysis, verdict, done + 1, count, marginal, passing, start, end)

    def _config(self, stage, wanted) -> CanaryConfig:
        configs = CanaryConfig.objects.filter(application_id=stage.execution.application_id)
        found = None
        if isinstance(wanted, int | str) and not isinstance(wanted, bool) and "\x00" not in str(wanted):
            if str(wanted).isdigit():
                found = configs.filter(pk=int(wanted)).first()
            found = found or configs.filter(name=str(wanted)).first()
        if found is None:
            raise CanaryRefused(f"canaryConfig.canaryConfigId: the application has no canary config {wanted!r}")
        return found

    def _judge(self, analysis: CanaryAnalysis, config: dict, account, start: float, end: float) -> dict:
        document = analysis.config
        scopes = {scope.get("scopeName") or "default": scope for scope in config.get("scopes") or []}
        first = next(iter(scopes.values()), None)
        if first is None:
            raise CanaryRefused("canaryConfig.scopes: at least one scope is needed")
        metrics: list[dict] = []
        samples: dict[str, tuple[list[float], list[float]]] = {}
        queries: dict[str, dict[str, str]] = {}
        for metric in document["metrics"]:
            scope = scopes.get(metric.get("scopeName") or "default", first)
            step = _step(scope.get("step"))
            extended = scope.get("extendedScopeParams") or {}
            pair = []
            for scope_key, location_key in (("experimentScope", "experimentLocation"),
                                            ("controlScope", "controlLocation")):
                try:
                    query = render_query(metric, document.get("templates") or {}, scope=str(scope[scope_key]),
                                         location=str(scope.get(location_key) or ""), extended=extended)
                except QueryUnresolved as unresolved:
                    raise CanaryRefused(f"metric {metric['name']}: {unresolved}") from None
                side = "canary" if scope_key == "experimentScope" else "baseline"
                queries.setdefault(metric["name"], {})[side] = query
                pair.append(query_range(account, query, start=start, end=end, step=step).values)
            samples[metric["name"]] = (pair[0], pair[1])
            metrics.append({"name": metric["name"], "groups": metric.get("groups") or None,
                            "settings": metric_settings(metric)})
        weights = (document.get("classifier") or {}).get("groupWeights") or {}
        result = judge(metrics, samples, weights)
        for entry in result["metrics"]:
            entry["queries"] = queries[entry["name"]]
        return result

    def _decide(self, analysis: CanaryAnalysis, verdict: dict, number: int, count: int, marginal: float,
                passing: float, start: float, end: float) -> TaskResult:
        """Record the interval's verdict (once, under the row's lock) and decide: go on, fail, or pass."""
        verdict.update(interval=number, start=_iso(start), end=_iso(end))
        with transaction.atomic():
            locked = CanaryAnalysis.objects.select_for_update().get(pk=analysis.pk)
            if len(locked.intervals) != number - 1 or locked.status != "RUNNING":
                # A run of this stage delivered twice recorded the interval first: the next run reads it.
                return TaskResult.running(retry_after=0.0, context={"canaryAnalysisId": analysis.pk})
            self._record(locked, verdict, number, count, marginal, passing)
        return self._result(locked, verdict, number, count, marginal, passing)

    def _record(self, analysis: CanaryAnalysis, verdict: dict, number: int, count: int, marginal: float,
                passing: float) -> None:
        # The windows are cumulative, so the last interval's samples hold the earlier ones': only its are kept.
        for earlier in analysis.intervals:
            for metric in earlier["metrics"]:
                metric.update(canary=[], baseline=[], samplesKept=False)
        analysis.intervals = [*analysis.intervals, verdict]
        analysis.score = verdict["score"]
        if verdict["score"] < marginal or number == count:
            analysis.status = "SUCCEEDED" if verdict["score"] >= passing else "TERMINAL"  # pass >= marginal
        analysis.save(update_fields=["intervals", "score", "status", "updated_at"])

    def _result(self, analysis: CanaryAnalysis, verdict: dict, number: int, count: int, marginal: float,
                passing: float) -> TaskResult:
        scores = [entry["score"] for entry in analysis.intervals]
        outputs = {
            "canaryAnalysisId": analysis.pk, "canaryScores": scores, "lastScore": verdict["score"],
            "intervalsDone": number, "intervals": count,
            "classifications": {m["name"]: m["classification"] for m in verdict["metrics"]},
        }
        context = {"canaryAnalysisId": analysis.pk, "canaryQueryRetries": 0}
        error = None
        if verdict["score"] < marginal:
            error = f"interval {number} of {count} scored {verdict['score']:g}, below marginal {marginal:g}"
        elif number == count and verdict["score"] < passing:
            error = f"the last interval scored {verdict['score']:g}, below pass {passing:g}"
        if error is not None:
            return TaskResult(Status.TERMINAL, context=context, outputs={**outputs, "canaryResult": "FAIL"},
                              error=error)
        if number == count:
            return TaskResult.succeeded(outputs={**outputs, "canaryResult": "PASS"}, context=context)
        return TaskResult(Status.RUNNING, context=context, outputs=outputs, retry_after=0.0)


def _step(value) -> float:
    """A scope's ``step``: seconds between samples (default 10), a positive number."""
    if value in (None, ""):
        return float(DEFAULT_STEP)
    try:
        step = float(value)
    except (TypeError, ValueError):
        raise CanaryRefused(f"canaryConfig.scopes: step {value!r} is not a number of seconds") from None
    if not math.isfinite(step) or step <= 0:
        raise CanaryRefused("canaryConfig.scopes: step must be a number of seconds above 0")
    return step


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.get_current_timezone()).isoformat()
