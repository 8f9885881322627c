"""Artifact accounts: private files read with an account's credentials from real servers on 127.0.0.1 (a file
server that wants a token or basic auth, git's own http-backend behind basic auth), the refusals naming the
field and never a credential, the accounts file's ``artifacts`` section, the API, and the use permission."""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.audit import Actor
from apps.accounts.models import AuditEvent
from apps.accounts.permissions import PermissionRefused
from apps.accounts.services import do_grant
from apps.deployments.credentials import decrypted
from apps.deployments.models import ArtifactAccount, RegistryAccount
from apps.deployments.services.artifact_accounts import do_save_artifact_account
from apps.deployments.stages import sources
from apps.deployments.stages.bake import BakeStage
from apps.deployments.stages.common import StageRefused
from apps.deployments.stages.manifest_operations import PatchManifestStage
from apps.deployments.stages.manifests import DeployManifestStage
from apps.pipelines.models import StageExecution
from apps.pipelines.services import do_save_pipeline, do_start_execution
from tests.deployments.conftest import git
from tests.hookserver import LOOPBACK

pytestmark = pytest.mark.django_db

TOKEN = "ghp-artifact-token-7"
PASSWORD = "git-password-9"
BASIC = "Basic " + base64.b64encode(f"ci:{PASSWORD}".encode()).decode()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- Servers on 127.0.0.1 ---------------------------------------------------------------------------


class PrivateFiles(BaseHTTPRequestHandler):
    """Serves ``server.files[path] = (header, value, body)`` only to a request whose ``header`` is ``value``: 401
    without it, 403 with another value. ``server.redirects[path]`` answers 302 to another URL. Every request's
    headers are kept in ``server.seen``."""

    def do_GET(self) -> None:
        self.server.seen.append((self.path, dict(self.headers)))
        if self.path in self.server.redirects:
            self._reply(302, b"", Location=self.server.redirects[self.path])
            return
        header, value, body = self.server.files.get(self.path, ("", "", None))
        if body is None:
            self._reply(404, b"no such file")
        elif header and self.headers.get(header) is None:
            self._reply(401, b"credentials required", **{"WWW-Authenticate": 'Basic realm="files"'})
        elif header and self.headers.get(header) != value:
            self._reply(403, b"wrong credentials")
        else:
            self._reply(200, body.encode())

    def _reply(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class GitOverHttp(BaseHTTPRequestHandler):
    """git's smart HTTP protocol (``git http-backend`` as a CGI program) for the repositories under
    ``server.root``, to requests with ``Authorization: server.expected`` only."""

    def do_GET(self) -> None:
        self._backend()

    def do_POST(self) -> None:
        self._backend()

    def _backend(self) -> None:
        self.server.seen.append((self.path, dict(self.headers)))
        if self.headers.get("Authorization") != self.server.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {"GIT_PROJECT_ROOT": str(self.server.root), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
               "QUERY_STRING": query, "REQUEST_METHOD": self.command, "REMOTE_ADDR": "127.0.0.1",
               "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
               "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
               "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        output = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True,
                                timeout=30).stdout
        separator = b"\r\n\r\n" if b"\r\n\r\n" in output else b"\n\n"
        head, _, payload = output.partition(separator)
        status, headers = 200, []
        for line in head.decode().splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in [*headers, ("Content-Length", str(len(payload)))]:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@contextmanager
def serving(handler, **attributes) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.seen = []
    for name, value in attributes.items():
        setattr(server, name, value)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def url(server: ThreadingHTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


@pytest.fixture
def loopback(settings):
    """The outbound policy lets the test process reach 127.0.0.1 only (as tests/hookserver.py does)."""
    settings.OUTBOUND_URL_ALLOWED_NETWORKS = [LOOPBACK]


@pytest.fixture
def files(loopback):
    with serving(PrivateFiles, files={}, redirects={}) as server:
        yield server


@pytest.fixture
def private_repository(tmp_path, loopback):
    """A bare repository ``shop.git`` whose ``deploy/web.yml`` names image v1 on main, served over HTTP to
    ``ci`` with PASSWORD only."""
    work = tmp_path / "work"
    (work / "deploy").mkdir(parents=True)
    git(work, "init", "-q", "-b", "main")
    (work / "deploy" / "web.yml").write_text("kind: Deployment\nimage: web:v1\n")
    (work / "Dockerfile").write_text("FROM scratch\n")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "v1")
    root = tmp_path / "served"
    root.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(root / "shop.git")], check=True)
    with serving(GitOverHttp, root=root, expected=BASIC) as server:
        yield server


# --- Stages of executions, as a worker has them -------------------------------------------------


def stage_run_by(user: User | str) -> StageExecution:
    """The first stage of a fresh execution of shop's pipeline, started by ``user`` (who executes in shop)."""
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "deliver",
                                    "stages": [{"refId": "1", "type": "wait", "waitTime": 1}]}, user="ops")
    actor: Actor | str = user
    if isinstance(user, User):
        do_grant(pipeline.application, user, "execute", actor="ops")
        actor = Actor(username=user.username, user=user)
    execution = do_start_execution(pipeline, user=actor)
    return StageExecution.objects.get(execution=execution, ref_id="1")


def account(document: dict) -> ArtifactAccount:
    saved, _ = do_save_artifact_account(document, actor="ops")
    return saved


def refusal(artifact: dict, stage, field: str = "manifestArtifact") -> str:
    with pytest.raises(StageRefused) as refused:
        sources.artifact_text(artifact, field, stage)
    return str(refused.value)


# --- Reading with credentials -------------------------------------------------------------------


def test_a_private_github_file_is_read_with_the_accounts_token_and_refused_without_it(files):
    files.files["/repos/shop/deploy/contents/web.yml?ref=v2"] = ("Authorization", f"token {TOKEN}", "kind: Job\n")
    account({"name": "github", "type": "github/file", "token": TOKEN})
    stage = stage_run_by("ops")
    artifact = {"type": "github/file", "reference": url(files, "/repos/shop/deploy/contents/web.yml"),
                "version": "v2"}

    assert sources.artifact_text({**artifact, "artifactAccount": "github"}, "manifestArtifact", stage) == \
        "kind: Job\n"
    anonymous = refusal(artifact, stage)
    account({"name": "stale", "type": "github/file", "token": "ghp-revoked-1"})
    wrong = refusal({**artifact, "artifactAccount": "stale"}, stage)

    path, headers = files.seen[0]
    assert headers["Authorization"] == f"token {TOKEN}" and headers["Accept"] == "application/vnd.github.v3.raw"
    assert anonymous.startswith(f"manifestArtifact: {artifact['reference']}?ref=v2 answered 401"), anonymous
    assert "name an artifactAccount" in anonymous
    assert "answered 403" in wrong and "artifact account 'stale'" in wrong and "ghp-revoked-1" not in wrong


def test_gitlab_gets_its_private_token_header_and_bitbucket_and_http_basic_auth(files):
    files.files["/gitlab/raw?ref=main"] = ("Private-Token", "glpat-5", "gitlab: yes\n")
    files.files["/bitbucket/raw"] = ("Authorization", basic("bb", "bb-pass-3"), "bitbucket: yes\n")
    files.files["/plain/job.yml"] = ("Authorization", basic("web", "web-pass-4"), "http: yes\n")
    account({"name": "gitlab", "type": "gitlab/file", "token": "glpat-5"})
    account({"name": "bitbucket", "type": "bitbucket/file", "username": "bb", "password": "bb-pass-3"})
    account({"name": "web", "type": "http/file", "username": "web", "password": "web-pass-4"})
    stage = stage_run_by("ops")

    read = [sources.artifact_text({"type": kind, "reference": url(files, path), "version": version,
                                   "artifactAccount": name}, "manifestArtifact", stage)
            for kind, path, version, name in (("gitlab/file", "/gitlab/raw", "main", "gitlab"),
                                              ("bitbucket/file", "/bitbucket/raw", "", "bitbucket"),
                                              ("http/file", "/plain/job.yml", "", "web"))]

    assert read == ["gitlab: yes\n", "bitbucket: yes\n", "http: yes\n"]


def test_a_token_file_is_read_each_time_the_account_is_used(files, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("glpat-old\n")
    files.files["/gitlab/raw"] = ("Private-Token", "glpat-new", "rotated\n")
    account({"name": "gitlab", "type": "gitlab/file", "tokenFile": str(token_file)})
    stage = stage_run_by("ops")
    artifact = {"type": "gitlab/file", "reference": url(files, "/gitlab/raw"), "artifactAccount": "gitlab"}

    before = refusal(artifact, stage)
    token_file.write_text("glpat-new\n")
    after = sources.artifact_text(artifact, "manifestArtifact", stage)
    token_file.unlink()
    gone = refusal(artifact, stage)

    assert "answered 403" in before and "glpat-old" not in before
    assert after == "rotated\n"
    assert gone == "manifestArtifact.artifactAccount: the tokenFile of artifact account gitlab cannot be read: " \
                   "No such file or directory"


def test_credentials_do_not_follow_a_redirect_to_another_origin(files):
    with serving(PrivateFiles, files={"/elsewhere": ("", "", "moved\n")}, redirects={}) as other:
        files.redirects["/moved"] = url(other, "/elsewhere")
        account({"name": "web", "type": "http/file", "username": "web", "password": "web-pass-4"})

        text = sources.artifact_text({"type": "http/file", "reference": url(files, "/moved"),
                                      "artifactAccount": "web"}, "manifestArtifact", stage_run_by("ops"))

        assert text == "moved\n"
        assert files.seen[0][1]["Authorization"] == basic("web", "web-pass-4")
        assert "Authorization" not in other.seen[0][1]


def test_a_private_git_repository_is_read_with_a_username_and_password_kept_out_of_argv(private_repository,
                                                                                         monkeypatch):
    account({"name": "repos", "type": "git/repo", "username": "ci", "password": PASSWORD})
    commands = []
    real_run = subprocess.run

    def recording_run(command, *args, **kwargs):
        commands.append((command, kwargs.get("env") or {}))
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(sources.subprocess, "run", recording_run)
    artifact = {"type": "git/repo", "reference": url(private_repository, "/shop.git"), "version": "main",
                "location": "deploy/web.yml", "artifactAccount": "repos"}

    text = sources.artifact_text(artifact, "manifestArtifact", stage_run_by("ops"))

    assert text == "kind: Deployment\nimage: web:v1\n"
    assert commands and all(PASSWORD not in " ".join(command) and BASIC.split()[1] not in " ".join(command)
                            for command, _ in commands)
    fetch_env = commands[1][1]
    assert fetch_env["GIT_CONFIG_KEY_0"] == "http.extraHeader" and fetch_env["GIT_CONFIG_VALUE_0"] == \
        f"Authorization: {BASIC}"
    assert fetch_env["GIT_TERMINAL_PROMPT"] == "0"
    assert all(headers.get("Authorization") == BASIC for _, headers in private_repository.seen[1:])


def test_a_git_fetch_that_fails_names_the_field_and_never_the_password(private_repository):
    account({"name": "stale", "type": "git/repo", "username": "ci", "password": "not-the-password-2"})
    account({"name": "repos", "type": "git/repo", "username": "ci", "password": PASSWORD})
    stage = stage_run_by("ops")
    artifact = {"type": "git/repo", "reference": url(private_repository, "/shop.git"), "version": "main",
                "location": "deploy/web.yml"}

    anonymous = refusal(artifact, stage)
    wrong = refusal({**artifact, "artifactAccount": "stale"}, stage)
    sent = private_repository.seen[-1][1]["Authorization"]
    missing = refusal({**artifact, "artifactAccount": "repos", "location": "deploy/api.yml"}, stage)

    assert anonymous.startswith(f"manifestArtifact: cannot fetch 'main' of {artifact['reference']}"), anonymous
    assert anonymous.endswith("(read without credentials: name an artifactAccount if the repository is private)")
    assert wrong.startswith(f"manifestArtifact: cannot fetch 'main' of {artifact['reference']}"), wrong
    assert wrong.endswith("(the server refused the credentials of artifact account 'stale')"), wrong
    assert missing.startswith("manifestArtifact: cannot find deploy/api.yml at 'main'"), missing
    forms = ("not-the-password-2", base64.b64encode(b"ci:not-the-password-2").decode(), PASSWORD,
             BASIC.split()[1])
    assert not any(form in message for form in forms for message in (wrong, missing)), (wrong, missing)
    assert sent == basic("ci", "not-the-password-2")


def test_git_stderr_that_echoes_a_credential_is_scrubbed(private_repository, monkeypatch):
    account({"name": "repos", "type": "git/repo", "username": "ci", "password": PASSWORD})

    def echoing_run(command, *args, **kwargs):
        env = kwargs.get("env") or {}
        said = f"fatal: {env.get('GIT_CONFIG_VALUE_0', '')} and {PASSWORD} refused".encode()
        return subprocess.CompletedProcess(command, 128, b"", said)

    monkeypatch.setattr(sources.subprocess, "run", echoing_run)
    message = refusal({"type": "git/repo", "reference": url(private_repository, "/shop.git"),
                       "location": "deploy/web.yml", "artifactAccount": "repos"}, stage_run_by("ops"))

    assert PASSWORD not in message and BASIC.split()[1] not in message
    assert "Authorization: *** and *** refused" in message


def test_bake_reads_a_private_repository_with_its_artifact_account(private_repository, tmp_path):
    account({"name": "repos", "type": "git/repo", "username": "ci", "password": PASSWORD})
    directory = tmp_path / "checkout"
    directory.mkdir()
    credentials = sources.account_credentials(stage_run_by("ops"), "repos", "artifactAccount", "git/repo")

    commit = sources.fetch_repository(url(private_repository, "/shop.git"), "main", directory, "repository",
                                      credentials)

    assert len(commit) == 40 and (directory / "deploy" / "web.yml").read_text().endswith("web:v1\n")


def test_bake_refuses_an_artifact_account_that_cannot_read_its_repository(private_repository):
    account({"name": "web", "type": "http/file", "username": "u", "password": "p"})
    account({"name": "stale", "type": "git/repo", "username": "ci", "password": "stale-password-1"})
    stage = stage_run_by("ops")
    repository = url(private_repository, "/shop.git")

    refusals = {}
    for name in ("nope", "web", "stale"):
        stage.context = {"imageName": "shop/web", "repository": repository, "ref": "main", "artifactAccount": name}
        with pytest.raises(StageRefused) as refused:
            BakeStage()._bake(stage)
        refusals[name] = str(refused.value)

    assert refusals["nope"] == "artifactAccount: there is no artifact account 'nope'"
    assert refusals["web"] == "artifactAccount: artifact account 'web' reads http/file artifacts, not git/repo"
    assert refusals["stale"].startswith(f"repository: cannot fetch 'main' of {repository}")
    assert "stale-password-1" not in refusals["stale"]
    [problem] = BakeStage().validate({"imageName": "shop/web", "context": "/src", "artifactAccount": "stale"}, "")
    assert problem.pointer == "/artifactAccount"


# --- Which account, and who may use it ------------------------------------------------------------


def test_an_unknown_account_or_one_of_another_type_is_refused_naming_the_field(files):
    account({"name": "web", "type": "http/file", "username": "u", "password": "p"})
    stage = stage_run_by("ops")
    github = {"type": "github/file", "reference": url(files, "/x")}
    embedded = {"type": "embedded/base64", "reference": base64.b64encode(b"kind: ConfigMap\n").decode()}

    assert refusal({**github, "artifactAccount": "nope"}, stage) == \
        "manifestArtifact.artifactAccount: there is no artifact account 'nope'"
    assert refusal({**github, "artifactAccount": "web"}, stage, "manifestArtifactId") == \
        "manifestArtifactId.artifactAccount: artifact account 'web' reads http/file artifacts, not github/file"
    assert "reads embedded/base64 artifacts, not github/file" in refusal(
        {**github, "artifactAccount": "embedded-artifact"}, stage)
    # The accounts Clouddriver always has, as Deck's artifacts name them, read without credentials.
    assert sources.artifact_text({**embedded, "artifactAccount": "embedded-artifact"}, "m", stage) == \
        "kind: ConfigMap\n"
    assert files.seen == []


def test_using_an_account_needs_use_on_it(files):
    files.files["/plain/job.yml"] = ("Authorization", basic("web", "web-pass-4"), "http: yes\n")
    web = account({"name": "web", "type": "http/file", "username": "web", "password": "web-pass-4"})
    erin, bob = User.objects.create_user("erin"), User.objects.create_user("bob")
    do_grant(web, bob, "read", actor="ops")
    artifact = {"type": "http/file", "reference": url(files, "/plain/job.yml"), "artifactAccount": "web"}

    refused = refusal(artifact, stage_run_by(bob))
    do_grant(web, erin, "use", actor="ops")
    read = sources.artifact_text(artifact, "manifestArtifact", stage_run_by(erin))

    assert refused == "manifestArtifact.artifactAccount: You may not use in artifact account web."
    assert read == "http: yes\n"
    assert len(files.seen) == 1, "a refused use sends nothing"
    with pytest.raises(StageRefused, match="used only by a stage"):
        sources.artifact_text(artifact, "manifestArtifact")


def test_an_artifact_account_that_is_not_a_name_is_refused_at_save():
    patch = {"type": "patchManifest", "account": "dev", "location": "shop", "manifestName": "deployment web",
             "source": "artifact", "manifestArtifact": {"type": "github/file", "reference": "https://x/y",
                                                        "artifactAccount": 42}}
    deploy = {"type": "deployManifest", "account": "dev", "source": "artifact",
              "manifestArtifact": {"type": "http/file", "reference": "https://x/y", "artifactAccount": ["a"]}}

    [wrong] = PatchManifestStage().own_problems(patch, "")
    [also] = DeployManifestStage().validate(deploy, "")

    assert wrong.pointer == "/manifestArtifact/artifactAccount"
    assert also.pointer == "/manifestArtifact/artifactAccount"
    named = {**patch, "manifestArtifact": {**patch["manifestArtifact"], "artifactAccount": "github"}}
    assert PatchManifestStage().own_problems(named, "") == []


# --- Saving: the accounts file, the API ----------------------------------------------------------

ACCOUNTS_FILE = """
artifacts:
  gitRepo:
    enabled: true
    accounts:
      - {name: repos, username: ci, password: "git-password-9"}
  github:
    accounts:
      - {name: github, token: "ghp-artifact-token-7"}
  gitlab:
    accounts:
      - {name: gitlab, tokenFile: /run/secrets/gitlab-token}
  bitbucket:
    accounts:
      - {name: bitbucket, username: bb, password: "bb-pass-3"}
  http:
    enabled: false
    accounts:
      - {name: web, username: web, password: "web-pass-4"}
"""


def load(tmp_path: Path, text: str) -> str:
    path = tmp_path / "accounts.yml"
    path.write_text(text)
    out = StringIO()
    call_command("accounts", "load", str(path), stdout=out)
    return out.getvalue()


def test_the_accounts_file_holds_clouddrivers_artifacts_section(tmp_path):
    output = load(tmp_path, ACCOUNTS_FILE)

    accounts = {a.name: a for a in ArtifactAccount.objects.all()}
    assert {name: a.type for name, a in accounts.items()} == {
        "repos": "git/repo", "github": "github/file", "gitlab": "gitlab/file", "bitbucket": "bitbucket/file"}
    assert decrypted(accounts["repos"].password) == PASSWORD and decrypted(accounts["github"].token) == TOKEN
    assert accounts["gitlab"].token_file == "/run/secrets/gitlab-token" and not accounts["gitlab"].has_token
    assert PASSWORD not in output and TOKEN not in output
    assert "web" not in accounts, "a kind with enabled: false loads nothing"


def refused_pointers(tmp_path: Path, document: dict) -> str:
    with pytest.raises(CommandError) as refused:
        load(tmp_path, yaml.safe_dump(document))
    return str(refused.value)


def test_a_bad_artifacts_section_changes_nothing_and_names_each_field(tmp_path):
    fine = [{"name": "fine", "address": "127.0.0.1:5001"}]
    shape = refused_pointers(tmp_path, {"registries": fine, "artifacts": {
        "gitRepo": {"accounts": [{"name": "typed", "type": "http/file"}]},
        "http": {"enabled": "yes", "accounts": []}, "gitlab": [], "s3": {"accounts": []}}})
    fields = refused_pointers(tmp_path, {"registries": fine, "artifacts": {
        "github": {"accounts": [{"name": "github", "token": 42}, {"name": "both", "token": "t", "tokenFile": "/t"}]},
        "gitlab": {"accounts": [{"name": "gitlab", "username": "me", "token": "t"}]},
        "gitRepo": {"accounts": [{"name": "repos", "sshPrivateKeyFilePath": "/root/.ssh/id_rsa"}]},
        "bitbucket": {"accounts": [{"name": "bb", "password": "p"}]}}})

    for pointer in ("/artifacts/gitRepo/accounts/0/type", "/artifacts/http/enabled", "/artifacts/gitlab",
                    "/artifacts/s3"):
        assert f"#{pointer}:" in shape, (pointer, shape)
    for pointer in ("/artifacts/github/accounts/0/token", "/artifacts/github/accounts/1/tokenFile",
                    "/artifacts/gitlab/accounts/0/username", "/artifacts/gitRepo/accounts/0/sshPrivateKeyFilePath",
                    "/artifacts/bitbucket/accounts/0/username"):
        assert f"#{pointer}:" in fields, (pointer, fields)
    assert "is not supported: git/repo accounts read repositories over http(s)" in fields
    assert not ArtifactAccount.objects.exists()
    assert not RegistryAccount.objects.filter(name="fine").exists()


def test_credentials_go_in_through_the_api_and_never_come_out():
    root = User.objects.create_superuser("root")
    client = APIClient()
    client.force_login(root)

    created = client.post("/api/artifact-accounts/", {"name": "github", "type": "github/file", "token": TOKEN},
                          format="json")
    changed = client.put("/api/artifact-accounts/github/", {"username": "ci", "token": "", "password": PASSWORD},
                         format="json")
    responses = [created, changed, client.get("/api/artifact-accounts/"), client.get("/api/artifact-accounts/github/")]

    assert created.status_code == 201, created.content
    assert created.json()["hasToken"] is True and created.json()["type"] == "github/file"
    assert changed.status_code == 200, changed.content
    assert changed.json() | {"createdAt": None, "updatedAt": None} == {
        "name": "github", "type": "github/file", "username": "ci", "hasPassword": True, "hasToken": False,
        "tokenFile": "", "usernamePasswordFile": "", "createdAt": None, "updatedAt": None}
    for response in responses:
        assert TOKEN.encode() not in response.content and PASSWORD.encode() not in response.content
    events = AuditEvent.objects.filter(object_type="artifact_account")
    assert events.count() == 2 and all(TOKEN not in str(e.details) and PASSWORD not in str(e.details)
                                       for e in events)
    wrong = client.post("/api/artifact-accounts/", {"name": "x", "type": "gitlab/file", "password": "p"},
                        format="json")
    assert wrong.status_code == 400 and {e["pointer"] for e in wrong.json()["errors"]} == {"/password"}
    retyped = client.put("/api/artifact-accounts/github/", {"type": "http/file"}, format="json")
    assert retyped.status_code == 400 and retyped.json()["errors"][0]["pointer"] == "/type"


def test_only_an_administrator_points_an_account_at_a_file_on_the_worker():
    web = account({"name": "web", "type": "http/file", "username": "web", "password": "p"})
    alice = User.objects.create_user("alice")
    do_grant(web, alice, "manage", actor="ops")

    with pytest.raises(PermissionRefused, match="file on the worker"):
        do_save_artifact_account({"name": "web", "username": "", "password": "",
                                  "usernamePasswordFile": "/etc/shadow"}, actor=alice)
    do_save_artifact_account({"name": "web", "password": "rotated"}, actor=alice)

    assert decrypted(ArtifactAccount.objects.get(name="web").password) == "rotated"
    assert ArtifactAccount.objects.get(name="web").username_password_file == ""


def test_a_username_password_file_holds_both(files, tmp_path):
    secret = tmp_path / "web-credentials"
    secret.write_text("web:web-pass-4\n")
    files.files["/plain/job.yml"] = ("Authorization", basic("web", "web-pass-4"), "http: yes\n")
    account({"name": "web", "type": "http/file", "usernamePasswordFile": str(secret)})
    artifact = {"type": "http/file", "reference": url(files, "/plain/job.yml"), "artifactAccount": "web"}
    stage = stage_run_by("ops")

    read = sources.artifact_text(artifact, "manifestArtifact", stage)
    secret.write_text("just-a-password\n")
    malformed = refusal(artifact, stage)

    assert read == "http: yes\n"
    assert malformed == "manifestArtifact.artifactAccount: the usernamePasswordFile of artifact account web " \
                        "does not hold username:password"


def test_the_admin_saves_through_the_service_keeps_a_token_left_empty_and_never_shows_it():
    admin = Client()
    admin.force_login(User.objects.create_superuser("root"))
    form = {"name": "github", "type": "github/file", "username": "", "new_token": TOKEN, "token_file": "",
            "username_password_file": ""}

    assert admin.get("/admin/deployments/artifactaccount/add/").status_code == 200
    added = admin.post("/admin/deployments/artifactaccount/add/", form)
    github = ArtifactAccount.objects.get(name="github")
    stored = github.token
    kept = admin.post(f"/admin/deployments/artifactaccount/{github.pk}/change/", {**form, "new_token": ""})
    both = admin.post(f"/admin/deployments/artifactaccount/{github.pk}/change/",
                      {**form, "username": "ci", "new_password": "p"})
    pages = [admin.get("/admin/deployments/artifactaccount/"),
             admin.get(f"/admin/deployments/artifactaccount/{github.pk}/change/"),
             admin.get(f"/admin/deployments/artifactaccount/{github.pk}/permissions/")]

    assert added.status_code == kept.status_code == 302, added.content.decode()[-2000:]
    github.refresh_from_db()
    assert github.token == stored and decrypted(stored) == TOKEN
    assert both.status_code == 200 and b"give a token or a username and password, not both" in both.content
    for page in pages:
        assert page.status_code == 200 and TOKEN.encode() not in page.content
    assert AuditEvent.objects.filter(object_type="artifact_account", source="admin").count() == 2
