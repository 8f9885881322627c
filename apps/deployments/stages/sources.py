"""Where the deployments' stages read files from: git repositories, and the artifacts that name a file.

A git repository is an http(s) URL the outbound policy allows, or a path
under BAKE_LOCAL_ROOTS. An artifact's text comes from, by its type:

- ``embedded/base64``: the ``reference`` itself, base64;
- ``git/repo``: the file ``location`` in the repository ``reference`` at
  ``version`` (a branch, tag or commit; default HEAD), fetched with git (one
  commit, no checkout);
- ``github/file``, ``gitlab/file``: the file the API URL ``reference`` names,
  at ``version`` (``?ref=``), as Clouddriver's artifact accounts read them
  (GitHub's raw media type); ``bitbucket/file`` and ``http/file``: the URL
  ``reference`` as it is. Each through the outbound policy (apps/pipelines/
  outbound.py).

An artifact naming an ``artifactAccount`` is read with that account's
credentials (apps/deployments/services/artifact_accounts.py), as Clouddriver
reads it: the account must exist, read artifacts of the artifact's type, and
the execution's identity must have ``use`` on it. GitHub gets ``Authorization:
token``, GitLab ``Private-Token``, Bitbucket and HTTP servers basic auth; git
gets basic auth as an ``http.extraHeader`` set through ``GIT_CONFIG_*``
environment variables, so the credentials are never in a command line (``ps``)
nor in a URL, with redirects not followed. The headers go only to the URL's
own origin (the outbound policy drops them on a redirect elsewhere), and every
credential is scrubbed from what git or a server says before it reaches a
refusal. ``embedded-artifact`` and ``no-auth-http-account``, the accounts
Clouddriver always has, read without credentials; an artifact naming no
account is read without them too.

Every read is bounded in time and size (``MAX_FILE_BYTES``); a failure is a
StageRefused naming the field and what went wrong.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml
from django.conf import settings

from apps.deployments.services.artifact_accounts import (
    BUILT_IN_ACCOUNTS,
    ArtifactCredentials,
    CredentialsUnavailable,
    open_credentials,
)
from apps.deployments.stages.artifacts import bound_artifact
from apps.deployments.stages.common import StageRefused, artifact_account, is_expression
from apps.pipelines.expressions import SUMMARY_KEY, ExpressionError, Summary
from apps.pipelines.outbound import OutboundError, check_url, request
from apps.pipelines.problems import Problem

GIT_TIMEOUT_SECONDS = 120
HTTP_TIMEOUT_SECONDS = 30
MAX_FILE_BYTES = 1024 * 1024
# The artifact types whose text can be read, and the query parameter the HTTP ones take their version in.
HTTP_FILE_TYPES = {"github/file": "ref", "gitlab/file": "ref", "bitbucket/file": None, "http/file": None}
READABLE_TYPES = ("embedded/base64", "git/repo", *HTTP_FILE_TYPES)
# What git says when the server wants credentials it did not get, or refused those it got.
GIT_AUTH_REFUSED = re.compile(r"could not read (Username|Password)|Authentication failed|\b40[13]\b")


def local_path(path: str, field: str) -> Path:
    """``path`` resolved, if it lies under one of BAKE_LOCAL_ROOTS; StageRefused otherwise."""
    resolved = Path(path).resolve()
    for root in settings.BAKE_LOCAL_ROOTS:
        if resolved == Path(root).resolve() or Path(root).resolve() in resolved.parents:
            return resolved
    raise StageRefused(f"{field}: {path!r} is not under BAKE_LOCAL_ROOTS "
                       f"({', '.join(settings.BAKE_LOCAL_ROOTS) or 'none configured'})")


def _git_source(repository: str, field: str) -> str:
    if re.match(r"^https?://", repository):
        try:
            check_url(repository)
        except OutboundError as error:
            raise StageRefused(f"{field}: {error}") from None
        return repository
    if "://" in repository or repository.startswith("-"):
        raise StageRefused(f"{field}: must be an http(s) URL or a path under BAKE_LOCAL_ROOTS")
    return str(local_path(repository, field))


def _git_environment(credentials: ArtifactCredentials | None) -> dict[str, str]:
    """git's environment: no prompt; with credentials, basic auth as an extra header of every request, from
    ``GIT_CONFIG_*`` (not argv, which ``ps`` shows to everyone), redirects not followed (the header would go
    with them) and no tracing that would print the header."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    basic = credentials.basic() if credentials is not None else ""
    if not basic:
        return env
    env = {key: value for key, value in env.items()
           if not key.startswith(("GIT_TRACE", "GIT_CURL_VERBOSE", "GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))}
    pairs = [("http.extraHeader", f"Authorization: {basic}"), ("http.followRedirects", "false"),
             ("credential.helper", "")]
    env["GIT_CONFIG_COUNT"] = str(len(pairs))
    for index, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{index}"], env[f"GIT_CONFIG_VALUE_{index}"] = key, value
    return env


def _git(commands: list[list[str]], what: str, field: str, credentials: ArtifactCredentials | None = None) -> str:
    env = _git_environment(credentials)
    scrub = credentials.scrub if credentials is not None else str
    result = None
    for command in commands:
        try:
            result = subprocess.run(command, capture_output=True, timeout=GIT_TIMEOUT_SECONDS, env=env)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise StageRefused(scrub(f"{field}: git failed: {error}")) from None
        if result.returncode != 0:
            stderr = result.stderr.decode("utf-8", errors="replace").strip()
            hint = _git_refusal_hint(stderr, credentials)
            raise StageRefused(scrub(f"{field}: cannot {what}: {stderr}{hint}"))
    return result.stdout.decode("utf-8", errors="replace") if result else ""


def _git_refusal_hint(stderr: str, credentials: ArtifactCredentials | None) -> str:
    """What a server asking for credentials (git then wants to prompt, which it may not) means here."""
    if not GIT_AUTH_REFUSED.search(stderr):
        return ""
    if credentials is None:
        return " (read without credentials: name an artifactAccount if the repository is private)"
    return f" (the server refused the credentials of artifact account {credentials.account!r})"


def _fetch_commands(source: str, ref: str, directory: Path) -> list[list[str]]:
    return [["git", "init", "-q", str(directory)],
            ["git", "-C", str(directory), "fetch", "-q", "--depth", "1", "--", source, ref or "HEAD"]]


def fetch_repository(repository: str, ref: str, directory: Path, field: str = "repository",
                     credentials: ArtifactCredentials | None = None) -> str:
    """Check ``ref`` of ``repository`` out into ``directory`` (with ``credentials`` over http(s), if given);
    returns the commit. StageRefused on failure."""
    source = _git_source(repository, field)
    commands = [*_fetch_commands(source, ref, directory), ["git", "-C", str(directory), "checkout", "-q", "FETCH_HEAD"],
                ["git", "-C", str(directory), "rev-parse", "HEAD"]]
    return _git(commands, f"fetch {ref or 'HEAD'!r} of {repository}", field, credentials).strip()


def read_git_file(repository: str, ref: str, path: str, field: str,
                  credentials: ArtifactCredentials | None = None) -> str:
    """The text of ``path`` in ``repository`` at ``ref`` (read with ``credentials`` over http(s), if given);
    StageRefused when it cannot be read."""
    clean = path.strip().lstrip("/")
    if not clean or clean.startswith("-") or ".." in Path(clean).parts or "\x00" in clean:
        raise StageRefused(f"{field}: the location must be a file's path inside the repository, not {path!r}")
    source = _git_source(repository, field)
    with tempfile.TemporaryDirectory(prefix="cdplatform-git-") as work:
        directory = Path(work)
        _git(_fetch_commands(source, ref, directory), f"fetch {ref or 'HEAD'!r} of {repository}", field, credentials)
        size = _git([["git", "-C", str(directory), "cat-file", "-s", f"FETCH_HEAD:{clean}"]],
                    f"find {clean} at {ref or 'HEAD'!r} of {repository}", field, credentials).strip()
        if not size.isdigit() or int(size) > MAX_FILE_BYTES:
            raise StageRefused(f"{field}: {clean} is over {MAX_FILE_BYTES // 1024} KB")
        return _git([["git", "-C", str(directory), "show", f"FETCH_HEAD:{clean}"]], f"read {clean}", field,
                    credentials)


def _refusal_hint(status: int, credentials: ArtifactCredentials | None) -> str:
    if status not in (401, 403, 404):
        return ""
    if credentials is None:
        return " (read without credentials: name an artifactAccount if the file is private)"
    return f" (read with artifact account {credentials.account!r})"


def _read_http_file(artifact: dict, field: str, credentials: ArtifactCredentials | None) -> str:
    kind = str(artifact.get("type"))
    url = str(artifact.get("reference") or "")
    version_parameter = HTTP_FILE_TYPES[kind]
    if version_parameter and artifact.get("version"):
        url += ("&" if "?" in url else "?") + urlencode({version_parameter: str(artifact["version"])})
    headers = {"Accept": "application/vnd.github.v3.raw"} if kind == "github/file" else {}
    if credentials is not None:
        headers.update(credentials.headers(kind))
    scrub = credentials.scrub if credentials is not None else str
    try:
        response = request("GET", url, headers=headers, timeout=HTTP_TIMEOUT_SECONDS)
    except OutboundError as error:
        raise StageRefused(scrub(f"{field}: cannot read {url}: {error}")) from None
    if response.status_code != 200:
        raise StageRefused(scrub(f"{field}: {url} answered {response.status_code}"
                                 f"{_refusal_hint(response.status_code, credentials)}"))
    if response.truncated or len(response.content) > MAX_FILE_BYTES:
        raise StageRefused(scrub(f"{field}: {url} is over {MAX_FILE_BYTES // 1024} KB"))
    return response.text


def account_credentials(stage, name, field: str, kind: str) -> ArtifactCredentials | None:
    """The credentials of artifact account ``name`` for reading a ``kind`` artifact, as the stage's execution may
    use them; None for a built-in account holding none. StageRefused naming ``field`` otherwise."""
    if name in BUILT_IN_ACCOUNTS:
        if BUILT_IN_ACCOUNTS[name] != kind:
            raise StageRefused(f"{field}: artifact account {name!r} reads {BUILT_IN_ACCOUNTS[name]} artifacts, "
                               f"not {kind}")
        return None
    if stage is None:
        raise StageRefused(f"{field}: an artifact account is used only by a stage, as whoever runs it")
    account = artifact_account(stage, name, field, kind)
    try:
        return open_credentials(account)
    except CredentialsUnavailable as error:
        raise StageRefused(f"{field}: {error}") from None


def artifact_text(artifact: dict, field: str, stage=None) -> str:
    """The text of the file ``artifact`` names (see the module's list of types), read with its
    ``artifactAccount``'s credentials if it names one (checked against ``stage``'s execution); StageRefused
    naming ``field``."""
    kind = str(artifact.get("type") or "")
    reference = artifact.get("reference")
    if kind not in READABLE_TYPES:
        raise StageRefused(f"{field}: artifacts of type {kind!r} cannot be read here; {', '.join(READABLE_TYPES)} can")
    if not isinstance(reference, str) or not reference:
        raise StageRefused(f"{field}: the artifact has no reference")
    credentials = None
    if artifact.get("artifactAccount") not in (None, ""):
        credentials = account_credentials(stage, artifact["artifactAccount"], f"{field}.artifactAccount", kind)
    if kind == "embedded/base64":
        if len(reference) > 2 * MAX_FILE_BYTES:
            raise StageRefused(f"{field}: the artifact is over {MAX_FILE_BYTES // 1024} KB")
        try:
            return base64.b64decode(reference, validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as error:
            raise StageRefused(f"{field}: the artifact is not base64 text: {error}") from None
    if kind == "git/repo":
        if not isinstance(artifact.get("location"), str) or not artifact["location"]:
            raise StageRefused(f"{field}: a git/repo artifact needs a location: the file's path in the repository")
        return read_git_file(reference, str(artifact.get("version") or ""), artifact["location"], field,
                             credentials)
    return _read_http_file(artifact, field, credentials)


# --- A stage's manifest artifact (deployManifest, patchManifest, runJobManifest) --------------------


def read_at_run_time(stage: dict) -> bool:
    """Whether a ``source: artifact`` stage's document is a file artifact (git/repo, github/file, ...) or one bound
    to ``manifestArtifactId``, read when the stage runs, rather than an embedded one checked at save."""
    artifact = stage.get("manifestArtifact")
    return stage.get("source") == "artifact" and not (isinstance(artifact, dict) and
                                                      artifact.get("type") == "embedded/base64")


def run_time_artifact_problems(stage: dict, pointer: str) -> list[Problem]:
    """What can be checked at save of an artifact read when the stage runs: that there is one to read."""
    artifact = stage.get("manifestArtifact")
    if is_expression(artifact):
        return []
    if artifact is None:
        expected = stage.get("manifestArtifactId")
        if isinstance(expected, str) and expected:
            return []
        return [Problem(f"{pointer}/manifestArtifactId", "a manifest artifact (its expected artifact id, or "
                                                         "manifestArtifact) is required for source artifact")]
    if not isinstance(artifact, dict) or artifact.get("type") not in READABLE_TYPES:
        kind = artifact.get("type") if isinstance(artifact, dict) else None
        return [Problem(f"{pointer}/manifestArtifact", f"artifacts of type {kind!r} cannot be read here; "
                                                       f"{', '.join(READABLE_TYPES)} can")]
    if not isinstance(artifact.get("reference"), str) or not artifact["reference"]:
        return [Problem(f"{pointer}/manifestArtifact/reference", "is required: where the document is")]
    return artifact_account_problems(artifact, f"{pointer}/manifestArtifact")


def artifact_account_problems(artifact: dict, pointer: str) -> list[Problem]:
    """What can be checked at save of an artifact's ``artifactAccount``: that it is a name (the account itself,
    and whether the execution may use it, are known when the stage runs)."""
    name = artifact.get("artifactAccount")
    if name is None or is_expression(name) or (isinstance(name, str) and len(name) <= 63 and "\x00" not in name):
        return []
    return [Problem(f"{pointer}/artifactAccount", "must be an artifact account's name")]


def skips_evaluation(context: dict) -> bool:
    """Whether the stage leaves the expressions of its manifests (or patch, or Job) as written."""
    return context.get("skipExpressionEvaluation") is True


def evaluated(stage, scope, value, field: str) -> tuple[Any, dict]:
    """``value`` with its expressions evaluated as Orca evaluates a context (what fails stays as written, listed in
    the summary returned as context; the stage fails for it only with ``failOnFailedExpressions``), unless the
    stage skips expression evaluation."""
    if skips_evaluation(stage.context):
        return value, {}
    summary = Summary()
    try:
        result = scope.evaluate(value, field=field, summary=summary)
    except ExpressionError as error:
        raise StageRefused(str(error) if error.field else f"{field}: {error}") from None
    if summary and stage.context.get("failOnFailedExpressions") is True:
        raise StageRefused(summary.describe())
    return result, ({SUMMARY_KEY: summary.as_context()} if summary else {})


def manifest_artifact(stage, scope) -> tuple[dict, str]:
    """The stage's manifest artifact and the field that named it: ``manifestArtifact`` (its own expressions
    evaluated unless skipped), or the artifact bound to ``manifestArtifactId``. StageRefused naming the field."""
    context = stage.context
    artifact = context.get("manifestArtifact")
    if artifact not in (None, ""):  # an artifact, or an expression giving one (``${trigger.artifacts[0]}``)
        artifact, _ = evaluated(stage, scope, artifact, "manifestArtifact")
        if not isinstance(artifact, dict):
            raise StageRefused("manifestArtifact: must be an artifact: {type, reference[, version, location]}")
        return artifact, "manifestArtifact"
    return bound_artifact(stage, str(context.get("manifestArtifactId")), "manifestArtifactId"), "manifestArtifactId"


def artifact_documents(stage, scope) -> tuple[list, str]:
    """The YAML or JSON documents of the stage's manifest artifact, read now, and the field that named it.

    As Orca's ManifestEvaluator does for a document read from an artifact, each is evaluated with the stage's
    expressions unless ``skipExpressionEvaluation``, and any expression that cannot be evaluated fails the stage
    (rather than staying as text, as in the rest of a context): a half-evaluated manifest is never applied.
    """
    artifact, field = manifest_artifact(stage, scope)
    try:
        documents = [document for document in yaml.safe_load_all(artifact_text(artifact, field, stage))
                     if document is not None]
    except yaml.YAMLError as error:
        raise StageRefused(f"{field}: the artifact is not YAML or JSON: {error}") from None
    if skips_evaluation(stage.context):
        return documents, field
    summary = Summary()
    try:
        documents = [scope.evaluate(document, field=field if len(documents) == 1 else f"{field}[{index}]",
                                    summary=summary) for index, document in enumerate(documents)]
    except ExpressionError as error:
        raise StageRefused(str(error) if error.field else f"{field}: {error}") from None
    if summary:
        raise StageRefused(f"{field}: an expression in the artifact's document cannot be evaluated: "
                           f"{summary.describe()}")
    return documents, field


def artifact_document(stage, scope) -> tuple[object, str]:
    """The one document (a patch, a Job) of the stage's manifest artifact, as ``artifact_documents`` reads it."""
    documents, field = artifact_documents(stage, scope)
    if len(documents) != 1:
        raise StageRefused(f"{field}: the artifact must hold one YAML or JSON document, not {len(documents)}")
    return documents[0], field
