"""``jenkins`` triggers: a CI build that finished successfully, as the Jenkins Notification plugin posts it.

The plugin (or any CI posting the same JSON) sends its job's build phases to
``/webhooks/jenkins/{master}``, where ``master`` is the CI server's name as
the trigger writes it. Only the ``FINALIZED`` phase of a build whose status
is ``SUCCESS`` fires; the other phases and results are recorded and answered
200. A trigger matches ``master`` and ``job`` (the job's name, or for a job in
folders Spinnaker's ``folder/job/name``). The endpoint is closed unless
``TRIGGER_CI_TOKEN`` is set; a sender proves it with ``Authorization: Bearer
<token>`` or, for senders that can set only a URL, ``?token=<token>``. A
build reported twice is a replay. The execution sees ``${trigger.buildNumber}``,
``${trigger.buildInfo}`` (number, url, result, scm...) and
``${trigger.properties}`` (the build's parameters).
"""

from __future__ import annotations

from apps.pipelines.problems import Problem
from apps.pipelines.stages.base import StageField
from apps.triggers.kinds.base import Event, TriggerKind, register_kind, text_field, words


def jenkins_key(master: str, job: str) -> str:
    return f"{master.strip()}/{job.strip().strip('/')}"


class JenkinsKind(TriggerKind):
    type = "jenkins"
    fields = (
        StageField("master", label="Jenkins master", required=True),
        StageField("job", label="Job", required=True),
    )

    def key(self, trigger: dict) -> str | None:
        master, job = trigger.get("master"), trigger.get("job")
        if not isinstance(master, str) or not isinstance(job, str) or not master or not job:
            return None
        return jenkins_key(master, job)

    def check(self, trigger: dict, pointer: str) -> list[Problem]:
        return text_field(trigger, "master", pointer, required=True) + text_field(trigger, "job", pointer,
                                                                                    required=True)

    def describe(self, trigger: dict) -> str:
        return f"Runs when Jenkins job {words(trigger.get('job'))} on {words(trigger.get('master'))} succeeds"


JENKINS = register_kind(JenkinsKind())


class NotFinished(Exception):
    """A phase or a result that fires nothing (queued, started, completed, a failure)."""


def _job_names(payload: dict) -> list[str]:
    names = [payload["name"]] if isinstance(payload.get("name"), str) else []
    url = payload.get("url")
    if isinstance(url, str) and url.startswith("job/"):
        names.append(url.removeprefix("job/").strip("/"))  # job/folder/job/name/ -> folder/job/name
    return names


def parse(master: str, payload: dict) -> tuple[Event, list[str]]:
    """The event a notification makes, and its lookup keys; NotFinished for what fires nothing, ValueError if bad."""
    build = payload.get("build")
    if not isinstance(build, dict):
        raise ValueError("/build: is required (an object: number, phase, status, url)")
    names = _job_names(payload)
    if not names:
        raise ValueError("/name: is required (the job's name)")
    if not isinstance(build.get("number"), int) or isinstance(build.get("number"), bool):
        raise ValueError("/build/number: must be a number")
    phase, status = build.get("phase"), build.get("status")
    if phase != "FINALIZED" or status != "SUCCESS":
        raise NotFinished(f"build {build['number']} of {names[0]} is {phase} {status or ''}".strip())
    info = {"name": names[0], "number": build["number"], "url": build.get("full_url") or build.get("url"),
            "result": status, "scm": build.get("scm") if isinstance(build.get("scm"), dict) else {},
            "artifacts": build.get("artifacts") if isinstance(build.get("artifacts"), dict) else {}}
    properties = build.get("parameters") if isinstance(build.get("parameters"), dict) else {}
    fields = {"master": master, "job": names[-1], "buildNumber": build["number"], "buildInfo": info,
              "properties": properties}
    summary = {"master": master, "job": names[0], "build": build["number"]}
    return Event("jenkins", jenkins_key(master, names[0]), fields=fields, summary=summary), [
        jenkins_key(master, name) for name in names]
