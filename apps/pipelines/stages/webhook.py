"""The ``webhook`` stage: calls a URL and, when asked, polls a status URL until the remote work ends.

Spinnaker's webhook stage, one step at a time:

1. *The call.* ``method`` (default POST) to ``url`` with ``customHeaders`` and
   ``payload`` as a JSON body. A timeout, a failed connection or a retryable
   status (5xx, 429, any of ``retryStatusCodes``) is tried again with
   exponential back-off, up to ``WEBHOOK_MAX_ATTEMPTS``. A status in
   ``failFastStatusCodes`` or any other status from 400 up fails the stage.
   The response is recorded as ``webhook`` (statusCode, body, headers) in the
   stage's context and outputs, so later stages can read
   ``${#stage('Hook').outputs.webhook.body.id}``. Once ``webhook.statusCode``
   is recorded, the call is never made again: a later step only polls. The
   call carries an ``Idempotency-Key`` header, the same on every try: should
   recording the response fail after the call went out (the database away
   for longer than the engine retries), the step runs again and the call is
   repeated with the same key, so the receiver can tell.
2. *Waiting* (``waitForCompletion``). The status URL comes from the call
   (``statusUrlResolution``: ``getMethod`` the same URL, ``locationHeader``
   the response's Location, ``webhookResponse`` the value at
   ``statusUrlJsonPath`` in its body) and is polled with GET every
   ``monitorPollIntervalSeconds`` (default ``WEBHOOK_MONITOR_INTERVAL_SECONDS``),
   after ``waitBeforeMonitor`` seconds. Without ``statusJsonPath`` the first 2xx
   status response succeeds (as in Orca); otherwise the value there decides:
   one of ``successStatuses`` succeeds, ``terminalStatuses`` fails,
   ``canceledStatuses`` cancels the stage (and so the execution), a number is a
   percentage (100 succeeds); anything else keeps polling. The latest status
   response is ``webhook.monitor``. A poll sends ``customHeaders`` only when
   the status URL has the origin (scheme, host, port) of ``url``.
3. *Cancel.* When the execution is canceled after the call was made, the stage
   sends ``cancelMethod`` (default POST) to ``cancelEndpoint`` with
   ``cancelPayload``, once, best effort (``signalCancellation: false`` turns
   this off).

Every request goes through the outbound-URL policy (``apps/pipelines/outbound.py``);
a redirect to another origin than the request's is followed without ``customHeaders``.
``url``, ``customHeaders``, ``payload``, ``cancelEndpoint`` and ``cancelPayload``
may use ``${#secret('name')}``: resolved just before each request, redacted
from everything the stage records (``apps/pipelines/secrets/``).
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from django.conf import settings
from django.db import transaction

from apps.pipelines import outbound
from apps.pipelines.choices import Status
from apps.pipelines.models import StageExecution
from apps.pipelines.problems import Problem, pointer_join
from apps.pipelines.scope import ExpressionScope
from apps.pipelines.secrets.resolution import using_secrets
from apps.pipelines.stages.base import StageField, StageType, TaskResult, register
from apps.pipelines.stages.json_path import MISSING, JsonPathError, parse_json_path, read_json_path

logger = logging.getLogger(__name__)

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
STATUS_URL_RESOLUTIONS = ("getMethod", "locationHeader", "webhookResponse")
BACKOFF_CAP_SECONDS = 60.0
# A status URL is never polled in a tight loop, whatever the stage says.
MIN_POLL_INTERVAL_SECONDS = 0.1
# Cancelling happens while a person waits for the execution to stop: keep it short.
CANCEL_TIMEOUT_SECONDS = 5.0
# Sent with the call, the same on every try and re-delivery of it (see idempotency_key).
IDEMPOTENCY_HEADER = "Idempotency-Key"

# Task state in the stage's context.
ATTEMPTS_KEY = "webhookAttempts"  # failed tries of the current request (the call, or the current poll)
LAST_FAILURE_KEY = "webhookLastFailure"
CANCEL_SIGNALED_KEY = "webhookCancelSignaled"


# --- Reading the stage's (evaluated) context ------------------------------------------------------


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _method(value: Any, default: str) -> str | None:
    """The HTTP method, upper-cased; None when it is not one the stage sends."""
    method = default if value in (None, "") else str(value).strip().upper()
    return method if method in METHODS else None


def _status_codes(value: Any) -> set[int]:
    codes: set[int] = set()
    for item in value if isinstance(value, list) else []:
        try:
            codes.add(int(item))
        except (TypeError, ValueError):
            continue
    return codes


def _seconds(value: Any, default: float) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    return seconds if seconds >= 0 else default


def _headers(context: dict) -> dict[str, str]:
    """``customHeaders`` as request headers; a list value is sent as one comma-separated header."""
    headers: dict[str, str] = {}
    custom = context.get("customHeaders")
    for name, value in (custom if isinstance(custom, dict) else {}).items():
        if value is None:
            continue
        headers[str(name)] = ", ".join(str(item) for item in value) if isinstance(value, list) else str(value)
    return headers


def _statuses(value: Any) -> list[str]:
    """A Spinnaker status list ("SUCCESS, DONE"), upper-cased; a JSON list is accepted too."""
    items = value if isinstance(value, list) else str(value or "").split(",")
    return [str(item).strip().upper() for item in items if str(item).strip()]


def _status_map(context: dict) -> dict[str, Status]:
    """Status text → stage status; as in Spinnaker, canceled overrides success and terminal overrides both."""
    mapping = dict.fromkeys(_statuses(context.get("successStatuses")), Status.SUCCEEDED)
    mapping.update(dict.fromkeys(_statuses(context.get("canceledStatuses")), Status.CANCELED))
    mapping.update(dict.fromkeys(_statuses(context.get("terminalStatuses")), Status.TERMINAL))
    return mapping


def _is_retryable(code: int, context: dict) -> bool:
    return code >= 500 or code == 429 or code in _status_codes(context.get("retryStatusCodes"))


def _call_accepted(webhook: Any) -> bool:
    """Whether context shows the call was made and answered with a 2xx or 3xx status."""
    code = webhook.get("statusCode") if isinstance(webhook, dict) else None
    return isinstance(code, int) and 200 <= code < 400


# --- Responses and results -----------------------------------------------------------------------


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _parse_body(response: outbound.OutboundResponse) -> Any:
    """The body as JSON when it is JSON, else as text; None when empty."""
    if not response.content:
        return None
    # Databases refuse NUL characters in JSON text.
    text = response.text.replace("\x00", "\ufffd")
    looks_json = "json" in response.headers.get("content-type", "").lower() or text.lstrip()[:1] in ("{", "[")
    if looks_json and not response.truncated and "\\u0000" not in text:
        try:
            return json.loads(text, parse_constant=_reject_constant)  # NaN and Infinity cannot be stored
        except ValueError:
            pass
    return text


def _record(response: outbound.OutboundResponse) -> dict:
    """What the stage keeps of a response (Spinnaker's shape, plus the headers)."""
    record = {
        "statusCode": response.status_code,
        "statusCodeValue": response.status_code,
        "body": _parse_body(response),
        "headers": dict(response.headers),
    }
    if response.truncated:
        record["bodyTruncated"] = True
    return record


def _result(
    status: Status, webhook: dict, *, error: str | None = None, retry_after: float | None = None, **context: Any
) -> TaskResult:
    """A result that records ``webhook`` in both context and outputs and clears the retry count."""
    return TaskResult(
        status,
        context={"webhook": webhook, ATTEMPTS_KEY: 0, **context},
        outputs={"webhook": webhook},
        retry_after=retry_after,
        error=error,
    )


def _backoff(attempts: int) -> float:
    return min(settings.WEBHOOK_RETRY_BACKOFF_SECONDS * 2 ** (attempts - 1), BACKOFF_CAP_SECONDS)


def _retry_or_fail(context: dict, what: str, failure: str) -> TaskResult:
    """Try ``what`` again after a back-off, or fail once WEBHOOK_MAX_ATTEMPTS tries have failed."""
    attempts = int(context.get(ATTEMPTS_KEY) or 0) + 1
    state = {ATTEMPTS_KEY: attempts, LAST_FAILURE_KEY: failure}
    if attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        return TaskResult.failed(f"{what} failed after {attempts} attempts; last: {failure}", context=state)
    logger.info("%s failed (attempt %d), will retry: %s", what, attempts, failure)
    return TaskResult.running(retry_after=_backoff(attempts), context=state)


def _send(
    context: dict,
    method: str,
    url: str,
    body_key: str | None,
    timeout: float,
    *,
    origin: str | None = None,
    headers: dict[str, str] | None = None,
) -> outbound.OutboundResponse:
    """One request through the policy; ``body_key`` names the context key holding its JSON body, if any.

    ``customHeaders`` (after ``headers``, which they override) go only to
    ``origin``, by default ``url``'s: never to another origin that a
    response names (a status URL, a redirect).
    """
    body = context.get(body_key) if body_key else None
    custom = _headers(context)
    names = {name.lower() for name in custom}
    return outbound.request(
        method,
        url,
        headers={**{k: v for k, v in (headers or {}).items() if k.lower() not in names}, **custom},
        origin=origin,
        json_body=body,
        send_body=method in BODY_METHODS and body is not None,
        timeout=timeout,
    )


def idempotency_key(stage: StageExecution) -> str:
    """The ``Idempotency-Key`` of a webhook stage's call: the same for every try and re-delivery of one run.

    Made of the execution's id, the stage's id and the time the stage
    started: a restart starts the stage again, so its call gets a new key.
    """
    started = int(stage.start_time.timestamp() * 1000) if stage.start_time is not None else 0
    return f"{stage.execution_id}:{stage.id}:{started}"


# --- The call ------------------------------------------------------------------------------------


def _call(context: dict, key: str) -> TaskResult:
    """Make the webhook's call (or one more try of it, with the same idempotency ``key``) and decide."""
    url = str(context.get("url") or "").strip()
    if not url:
        return TaskResult.failed("url is empty")
    method = _method(context.get("method"), "POST")
    if method is None:
        return TaskResult.failed(f"method {context.get('method')!r} is not one of {', '.join(METHODS)}")
    try:
        response = _send(
            context, method, url, "payload", settings.WEBHOOK_TIMEOUT_SECONDS, headers={IDEMPOTENCY_HEADER: key}
        )
    except outbound.OutboundError as error:
        if error.retryable:
            return _retry_or_fail(context, f"webhook {method} {url}", str(error))
        return TaskResult.failed(f"webhook {method} {url} failed: {error}")
    return _on_call_response(context, method, url, response)


def _on_call_response(context: dict, method: str, url: str, response: outbound.OutboundResponse) -> TaskResult:
    code = response.status_code
    webhook = _record(response)
    if code in _status_codes(context.get("failFastStatusCodes")):
        error = f"webhook {method} {url} returned {code}, which is in failFastStatusCodes"
        return _result(Status.TERMINAL, {**webhook, "error": error}, error=error)
    if _is_retryable(code, context):
        return _retry_or_fail(context, f"webhook {method} {url}", f"status {code}")
    if not 200 <= code < 400:
        error = f"webhook {method} {url} returned {code}"
        return _result(Status.TERMINAL, {**webhook, "error": error}, error=error)
    if not _flag(context.get("waitForCompletion")):
        return _result(Status.SUCCEEDED, webhook)
    status_url, problem = _status_url(context, url, response, webhook["body"])
    if problem:
        error = f"cannot wait for completion of webhook {url}: {problem}"
        return _result(Status.TERMINAL, {**webhook, "error": error}, error=error)
    webhook["statusEndpoint"] = status_url
    wait = _seconds(context.get("waitBeforeMonitor"), 0.0)
    return _result(Status.RUNNING, webhook, retry_after=wait, statusEndpoint=status_url)


def _status_url(context: dict, url: str, response: outbound.OutboundResponse, body: Any) -> tuple[str, str | None]:
    """Where to poll for the status (Spinnaker's rules), or a reason it cannot be known."""
    resolution = context.get("statusUrlResolution") or "getMethod"
    if resolution == "getMethod":
        return url, None
    if resolution == "locationHeader":
        candidate = response.headers.get("location")
        if not candidate:
            return "", "the response has no Location header (statusUrlResolution: locationHeader)"
    elif resolution == "webhookResponse":
        path = str(context.get("statusUrlJsonPath") or "")
        try:
            candidate = read_json_path(body, path) if path else MISSING
        except JsonPathError as error:
            return "", str(error)
        if not isinstance(candidate, str) or not candidate:
            return "", f"statusUrlJsonPath {path!r} does not lead to a URL in the response"
    else:
        return "", f"statusUrlResolution {resolution!r} is not one of {', '.join(STATUS_URL_RESOLUTIONS)}"
    parts, original = urlsplit(candidate), urlsplit(url)
    if parts.scheme and parts.hostname == original.hostname and parts.scheme != original.scheme:
        # Spinnaker keeps the webhook's scheme for a status URL on the same host.
        return urlunsplit(parts._replace(scheme=original.scheme)), None
    return urljoin(url, candidate), None


# --- Polling -------------------------------------------------------------------------------------


def _poll(context: dict, webhook: dict) -> TaskResult:
    """GET the status URL once and decide from the status it reports."""
    status_url = str(context.get("statusEndpoint") or webhook.get("statusEndpoint") or "")
    if not status_url:
        return TaskResult.failed("waitForCompletion needs a status URL")
    url = str(context.get("url") or "").strip()
    try:
        # customHeaders go to the origin of the url the author wrote, not to one the response named.
        response = _send(context, "GET", status_url, None, settings.WEBHOOK_TIMEOUT_SECONDS, origin=url)
    except outbound.OutboundError as error:
        if error.retryable:
            return _retry_or_fail(context, f"status poll of {status_url}", str(error))
        return _monitor_failed(webhook, {}, f"status poll of {status_url} failed: {error}")
    code = response.status_code
    monitor = _record(response)
    monitor.pop("headers")
    if response.headers_withheld:
        monitor["customHeadersWithheld"] = True
    if _is_retryable(code, context):
        return _retry_or_fail(context, f"status poll of {status_url}", f"status {code}")
    if not 200 <= code < 300:
        withheld = " (without customHeaders, which go only to the origin of url)" if response.headers_withheld else ""
        return _monitor_failed(webhook, monitor, f"status poll of {status_url} returned {code}{withheld}")
    return _decide(context, webhook, monitor, status_url)


def _monitor_failed(webhook: dict, monitor: dict, error: str) -> TaskResult:
    return _result(Status.TERMINAL, {**webhook, "monitor": {**monitor, "error": error}}, error=error)


def _decide(context: dict, webhook: dict, monitor: dict, status_url: str) -> TaskResult:
    """The stage's status from the value at statusJsonPath in a status response.

    Without a statusJsonPath, as in Orca, the first 2xx status response succeeds.
    """
    if context.get("statusJsonPath") in (None, ""):
        return _result(Status.SUCCEEDED, {**webhook, "monitor": monitor})
    path = str(context.get("statusJsonPath"))
    try:
        value = read_json_path(monitor["body"], path)
    except JsonPathError as error:
        return _monitor_failed(webhook, monitor, str(error))
    if value is MISSING:
        return _monitor_failed(webhook, monitor, f"statusJsonPath {path!r} is not in the response of {status_url}")
    if value is None or isinstance(value, dict | list):
        return _monitor_failed(webhook, monitor, f"statusJsonPath {path!r} does not lead to a single value")
    _add_progress(context, monitor)
    if isinstance(value, int | float) and not isinstance(value, bool):
        monitor["percentComplete"] = value
        status = Status.SUCCEEDED if value == 100 else Status.RUNNING
    else:
        monitor["status"] = str(value)
        status = _status_map(context).get(str(value).strip().upper(), Status.RUNNING)
    webhook = {**webhook, "monitor": monitor}
    if status == Status.RUNNING:
        interval = _seconds(context.get("monitorPollIntervalSeconds"), settings.WEBHOOK_MONITOR_INTERVAL_SECONDS)
        return _result(Status.RUNNING, webhook, retry_after=max(interval, MIN_POLL_INTERVAL_SECONDS))
    if status == Status.TERMINAL:
        return _result(status, webhook, error=f"{status_url} reported status {value!r}, one of terminalStatuses")
    return _result(status, webhook)


def _add_progress(context: dict, monitor: dict) -> None:
    """Record the progress message at progressJsonPath, when there is one (its absence is no failure)."""
    path = context.get("progressJsonPath")
    if not path:
        return
    try:
        progress = read_json_path(monitor["body"], str(path))
    except JsonPathError:
        return
    if isinstance(progress, str | int | float) and not isinstance(progress, bool) and progress != "":
        monitor["progressMessage"] = str(progress)


# --- Cancel --------------------------------------------------------------------------------------


def _claim_cancel(stage: StageExecution) -> bool:
    """Record in the stage's row that its cancel request goes out; False when it already went."""
    with transaction.atomic():
        row = StageExecution.objects.select_for_update().filter(pk=stage.pk).only("id", "context").first()
        if row is None:
            return True  # not saved: nothing to record
        if row.context.get(CANCEL_SIGNALED_KEY):
            return False
        row.context = {**row.context, CANCEL_SIGNALED_KEY: True}
        row.save(update_fields=["context"])
    return True


def _signal_cancel(context: dict) -> None:
    endpoint = str(context.get("cancelEndpoint")).strip()
    method = _method(context.get("cancelMethod"), "POST")
    if method is None:
        logger.warning("webhook cancel not sent: cancelMethod %r is not supported", context.get("cancelMethod"))
        return
    timeout = min(settings.WEBHOOK_TIMEOUT_SECONDS, CANCEL_TIMEOUT_SECONDS)
    try:
        response = _send(context, method, endpoint, "cancelPayload", timeout)
    except outbound.OutboundError as error:
        logger.warning("webhook cancel %s %s failed: %s", method, endpoint, error)
        return
    if response.status_code >= 400:
        logger.warning("webhook cancel %s %s returned %s", method, endpoint, response.status_code)
    else:
        logger.info("webhook cancel %s %s returned %s", method, endpoint, response.status_code)


# --- The stage type ------------------------------------------------------------------------------


def _step(context: dict, key: str) -> TaskResult:
    """One step: the call (with ``Idempotency-Key: key``), or (the call made by an earlier step) the next poll."""
    webhook = context.get("webhook")
    if not isinstance(webhook, dict) or "statusCode" not in webhook:
        return _call(context, key)
    if not _flag(context.get("waitForCompletion")):
        return _result(Status.SUCCEEDED, webhook)
    return _poll(context, webhook)


WEBHOOK_FIELDS = (
    StageField("url", label="URL", required=True, help="http or https; may use ${...} and ${#secret('name')}."),
    StageField("method", "choice", label="Method", choices=METHODS, default="POST"),
    StageField("customHeaders", "object", label="Headers", help="Header names to values."),
    StageField("payload", "object", label="Payload", help="Sent as the JSON body."),
    StageField("failFastStatusCodes", "list", label="Fail-fast status codes", item_kind="integer"),
    StageField("retryStatusCodes", "list", label="Retry status codes", item_kind="integer",
               help="Tried again besides 5xx and 429."),
    StageField("waitForCompletion", "boolean", label="Wait for completion", default=False),
    StageField("statusUrlResolution", "choice", label="Status URL", choices=STATUS_URL_RESOLUTIONS,
               default="getMethod"),
    StageField("statusUrlJsonPath", label="Status URL JSON path", help="With webhookResponse."),
    StageField("statusJsonPath", label="Status JSON path", help="Where the status is in the status response."),
    StageField("progressJsonPath", label="Progress JSON path"),
    StageField("successStatuses", label="Success statuses", help="Comma-separated, e.g. SUCCESS, DONE."),
    StageField("canceledStatuses", label="Canceled statuses"),
    StageField("terminalStatuses", label="Terminal statuses"),
    StageField("waitBeforeMonitor", "number", label="Wait before polling (seconds)", default=0),
    StageField("monitorPollIntervalSeconds", "number", label="Poll interval (seconds)"),
    StageField("cancelEndpoint", label="Cancel URL", help="Called when the execution is canceled."),
    StageField("cancelMethod", "choice", label="Cancel method", choices=METHODS, default="POST"),
    StageField("cancelPayload", "object", label="Cancel payload"),
    StageField("signalCancellation", "boolean", label="Signal cancellation", default=True),
)


@register
class WebhookStage(StageType):
    """Spinnaker's ``webhook`` stage: an HTTP call, optionally followed by polling a status URL."""

    type_name = "webhook"
    label = "Webhook"
    description = "Calls a URL and, when asked, polls a status URL until the remote work ends."
    fields = WEBHOOK_FIELDS
    performs_io = True
    secret_fields = ("url", "customHeaders", "payload", "cancelEndpoint", "cancelPayload")

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        return _definition_problems(stage, pointer)

    def run(self, stage, scope, runtime) -> TaskResult:
        # Secrets are resolved here, for this step's request alone, and redacted from what it returns.
        with using_secrets(stage, scope, self.secret_fields) as use:
            return use.redact(_step(use.context, idempotency_key(stage)))

    def cancel(self, stage: StageExecution, runtime) -> None:
        """Send the cancel request once when the call was made and a cancelEndpoint is set; never raises."""
        context = stage.context or {}
        if not context.get("cancelEndpoint") or context.get("signalCancellation") is False:
            return
        if not _call_accepted(context.get("webhook")):
            return
        try:
            if _claim_cancel(stage):
                with using_secrets(stage, ExpressionScope(stage.execution, stage=stage), self.secret_fields) as use:
                    _signal_cancel(use.context)
        except Exception:  # noqa: BLE001  (best effort: a cancel must go on whatever the remote end does)
            logger.exception("webhook cancel of stage %s failed", stage.pk)


# --- Validation ----------------------------------------------------------------------------------


def _is_expression(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def _definition_problems(stage: dict, pointer: str) -> list[Problem]:
    """Problems with the literal values of a webhook definition; expressions are checked when the stage runs."""
    problems = _url_problems(stage, "url", pointer) + _url_problems(stage, "cancelEndpoint", pointer)
    for key in ("method", "cancelMethod"):
        problems += _choice_problems(stage, key, METHODS, pointer, upper=True)
    problems += _choice_problems(stage, "statusUrlResolution", STATUS_URL_RESOLUTIONS, pointer, upper=False)
    for key in ("failFastStatusCodes", "retryStatusCodes"):
        problems += _status_code_problems(stage, key, pointer)
    for key in ("waitBeforeMonitor", "monitorPollIntervalSeconds"):
        value = stage.get(key)
        if value is not None and not _is_expression(value) and _seconds(value, -1.0) < 0:
            problems.append(Problem(pointer_join(pointer, key), "must be a number of seconds, 0 or more"))
    headers = stage.get("customHeaders")
    if headers is not None and not _is_expression(headers) and not isinstance(headers, dict):
        problems.append(Problem(pointer_join(pointer, "customHeaders"), "must be an object of header names to values"))
    return problems + _completion_problems(stage, pointer)


def _url_problems(stage: dict, key: str, pointer: str) -> list[Problem]:
    value = stage.get(key)
    if value in (None, "") or _is_expression(value):
        return []
    if not isinstance(value, str):
        return [Problem(pointer_join(pointer, key), "must be an http or https URL")]
    message = outbound.check_url_syntax(value)
    return [Problem(pointer_join(pointer, key), message)] if message else []


def _choice_problems(stage: dict, key: str, choices: tuple[str, ...], pointer: str, *, upper: bool) -> list[Problem]:
    value = stage.get(key)
    if value in (None, "") or _is_expression(value):
        return []
    chosen = str(value).strip().upper() if upper else value
    if chosen in choices:
        return []
    return [Problem(pointer_join(pointer, key), f"must be one of {', '.join(choices)}")]


def _status_code_problems(stage: dict, key: str, pointer: str) -> list[Problem]:
    value = stage.get(key)
    if value is None or _is_expression(value):
        return []
    if not isinstance(value, list):
        return [Problem(pointer_join(pointer, key), "must be a list of HTTP status codes")]
    return [
        Problem(pointer_join(pointer, key, index), "must be an HTTP status code (100-599)")
        for index, code in enumerate(value)
        if not _is_expression(code) and not (isinstance(code, int) and not isinstance(code, bool) and 100 <= code < 600)
    ]


def _completion_problems(stage: dict, pointer: str) -> list[Problem]:
    """What waiting for completion needs: a status path, and for webhookResponse a status-URL path."""
    problems = []
    for key in ("statusJsonPath", "statusUrlJsonPath", "progressJsonPath"):
        value = stage.get(key)
        if isinstance(value, str) and value.strip() and not _is_expression(value):
            try:
                parse_json_path(value)
            except JsonPathError as error:
                problems.append(Problem(pointer_join(pointer, key), str(error)))
    if stage.get("waitForCompletion") is not True:
        return problems
    if stage.get("statusUrlResolution") == "webhookResponse" and stage.get("statusUrlJsonPath") in (None, ""):
        problems.append(
            Problem(pointer_join(pointer, "statusUrlJsonPath"), "is required with statusUrlResolution webhookResponse")
        )
    return problems
