"""``git`` triggers: pushes to GitHub, GitLab, Bitbucket Cloud and Server (Stash), as Spinnaker reads them.

A trigger names ``source`` (github, gitlab, bitbucket, stash), ``project``
(owner, group or project key), ``slug`` (the repository), ``branch`` (a
regex; absent: any) and optionally ``secret`` (``${#secret('name')}``): with
one, a push must be signed with it — GitHub's ``X-Hub-Signature-256``, GitLab's
``X-Gitlab-Token``, Bitbucket's ``X-Hub-Signature`` (HMAC-SHA256 of the body)
— and is refused otherwise. The execution sees ``${trigger.hash}``,
``${trigger.branch}``, ``${trigger.project}``, ``${trigger.slug}``,
``${trigger.source}``.
"""

from __future__ import annotations

from typing import Any

from apps.pipelines.patterns import matches_pattern, pattern_problem
from apps.pipelines.problems import Problem, pointer_join
from apps.pipelines.stages.base import StageField
from apps.triggers.kinds.base import (
    Event,
    TriggerKind,
    register_kind,
    secret_problem,
    text_field,
    words,
)
from apps.triggers.signatures import hmac_sha256_matches, token_matches

SOURCES = ("github", "gitlab", "bitbucket", "stash")


def git_key(source: str, project: str, slug: str) -> str:
    return f"{source}:{project.strip().lower()}/{slug.strip().lower()}"


class GitKind(TriggerKind):
    type = "git"
    secret_fields = ("secret",)
    fields = (
        StageField("source", "choice", "Source", required=True, choices=SOURCES),
        StageField("project", label="Project", required=True, help="The organisation or group"),
        StageField("slug", label="Repository", required=True),
        StageField("branch", label="Branch", help="A regular expression; empty: any branch"),
        StageField("secret", label="Secret", help="Checks the hook's signature: a reference to an application "
                   "secret, ${#secret('name')}, or the value, which saving moves into the application's secrets"),
    )

    def key(self, trigger: dict) -> str | None:
        source, project, slug = (trigger.get(name) for name in ("source", "project", "slug"))
        if source not in SOURCES or not isinstance(project, str) or not isinstance(slug, str):
            return None
        return git_key(source, project, slug)

    def check(self, trigger: dict, pointer: str) -> list[Problem]:
        problems = text_field(trigger, "source", pointer, required=True)
        if not problems and trigger["source"] not in SOURCES:
            problems.append(Problem(pointer_join(pointer, "source"), f"must be one of: {', '.join(SOURCES)}"))
        problems += text_field(trigger, "project", pointer, required=True)
        problems += text_field(trigger, "slug", pointer, required=True)
        problems += secret_problem(trigger, pointer)
        return problems + pattern_problem(trigger.get("branch"), pointer_join(pointer, "branch"))

    def describe(self, trigger: dict) -> str:
        return (f"Runs on a push to {words(trigger.get('source'), 'git')} repository "
                f"{words(trigger.get('project'))}/{words(trigger.get('slug'))}, branch {words(trigger.get('branch'))}")

    def mismatch(self, trigger: dict, event: Event) -> str | None:
        if not matches_pattern(trigger.get("branch"), event.fields["branch"]):
            return f"branch {event.fields['branch']!r} does not match {trigger.get('branch')!r}"
        return None


GIT = register_kind(GitKind())


# --- Reading each provider's push ---------------------------------------------------------------------


class NotAPush(Exception):
    """A well-formed delivery that is not a push (a ping, an issue event, a deleted branch): nothing to do."""


def _get(payload: Any, *path: str) -> Any:
    for name in path:
        payload = payload.get(name) if isinstance(payload, dict) else None
    return payload


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _branch(ref: str) -> str:
    return ref.removeprefix("refs/heads/")


def _push(source: str, project: str, slug: str, branch: str, commit: str, keys: list[str]) -> tuple[Event, list[str]]:
    if not project or not slug:
        raise ValueError("the payload names no repository (project and slug)")
    fields = {"source": source, "project": project, "slug": slug, "branch": branch, "hash": commit}
    event = Event("git", git_key(source, project, slug), fields=fields, summary=dict(fields))
    return event, [event.key, *keys]


def parse_github(headers, payload: dict) -> tuple[Event, list[str]]:
    kind = headers.get("X-GitHub-Event", "push")
    if kind != "push":
        raise NotAPush(f"GitHub event {kind!r} is not a push")
    if payload.get("deleted") is True:
        raise NotAPush("the push deletes the branch")
    owner = _get(payload, "repository", "owner")
    project = _text(_get(owner, "login")) or _text(_get(owner, "name"))
    return _push("github", project, _text(_get(payload, "repository", "name")), _branch(_text(payload.get("ref"))),
                 _text(payload.get("after")), [])


def parse_gitlab(headers, payload: dict) -> tuple[Event, list[str]]:
    if payload.get("object_kind", "push") != "push":
        raise NotAPush(f"GitLab event {payload.get('object_kind')!r} is not a push")
    path = _text(_get(payload, "project", "path_with_namespace"))
    project, _, slug = path.rpartition("/")
    # Spinnaker matched the project's namespace and name; the path is what GitLab guarantees unique.
    alias = git_key("gitlab", _text(_get(payload, "project", "namespace")), _text(_get(payload, "project", "name")))
    commit = _text(payload.get("checkout_sha")) or _text(payload.get("after"))
    return _push("gitlab", project, slug, _branch(_text(payload.get("ref"))), commit, [alias])


def parse_bitbucket(headers, payload: dict) -> tuple[Event, list[str]]:
    kind = headers.get("X-Event-Key", "repo:push")
    if kind in ("repo:refs_changed", "pr:merged") or "changes" in payload and "push" not in payload:
        return parse_stash(headers, payload)
    if kind != "repo:push":
        raise NotAPush(f"Bitbucket event {kind!r} is not a push")
    changes = _get(payload, "push", "changes")
    new = _get(changes[0], "new") if isinstance(changes, list) and changes else None
    if not isinstance(new, dict):
        raise NotAPush("the push has no new branch head (a deleted branch)")
    project, _, slug = _text(_get(payload, "repository", "full_name")).partition("/")
    return _push("bitbucket", project, slug, _text(new.get("name")), _text(_get(new, "target", "hash")), [])


def parse_stash(headers, payload: dict) -> tuple[Event, list[str]]:
    """Bitbucket Server's ``repo:refs_changed`` (or Stash's older post-receive payload, ``refChanges``)."""
    changes = payload.get("changes") if "changes" in payload else payload.get("refChanges")
    change = changes[0] if isinstance(changes, list) and changes and isinstance(changes[0], dict) else {}
    if change.get("type") == "DELETE":
        raise NotAPush("the push deletes the branch")
    branch = _text(_get(change, "ref", "displayId")) or _branch(_text(change.get("refId")))
    project = _text(_get(payload, "repository", "project", "key"))
    return _push("stash", project, _text(_get(payload, "repository", "slug")), branch,
                 _text(change.get("toHash")), [])


PARSERS = {"github": parse_github, "gitlab": parse_gitlab, "bitbucket": parse_bitbucket, "stash": parse_stash}


def delivery_id(source: str, headers) -> str:
    """The provider's id of the delivery, which a redelivery repeats (empty when it sends none)."""
    names = {"github": "X-GitHub-Delivery", "gitlab": "X-Gitlab-Event-UUID", "bitbucket": "X-Request-UUID",
             "stash": "X-Request-Id"}
    return headers.get(names[source], "") or (headers.get("X-Request-Id", "") if source == "bitbucket" else "")


def signature_refusal(source: str, headers, body: bytes, secret: str) -> tuple[int, str] | None:
    """Why a push is not signed with ``secret`` (status 401: no signature, 403: a wrong one); None when it is."""
    if source == "gitlab":
        sent, name = headers.get("X-Gitlab-Token"), "X-Gitlab-Token"
        ok = sent is not None and token_matches(sent, secret)
    else:
        name = "X-Hub-Signature-256" if source == "github" else "X-Hub-Signature"
        sent = headers.get(name)
        ok = sent is not None and hmac_sha256_matches(secret, body, sent)
    if sent is None:
        return 401, f"the trigger has a secret and the request has no {name} header"
    return None if ok else (403, f"the {name} header does not match the trigger's secret")
