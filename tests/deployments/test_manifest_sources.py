"""deployManifest reading its manifests from a file in a git repository at a ref (``git/repo``) and from a file
an HTTP server holds (``github/file``, as GitHub's contents API serves it), against the real test cluster; and
the refusals, which name the field. patchManifest and runJobManifest read theirs when they run, evaluated with
the stage's expressions unless skipExpressionEvaluation."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import pytest
import yaml

from apps.deployments.stages.common import StageRefused
from apps.deployments.stages.manifest_jobs import RunJobManifestStage
from apps.deployments.stages.manifest_operations import PatchManifestStage
from apps.deployments.stages.sources import artifact_document, artifact_text, read_git_file
from apps.pipelines.choices import Status
from apps.pipelines.expressions import evaluate
from apps.pipelines.services import do_save_pipeline, do_start_execution
from tests.conftest import wait_for_execution
from tests.deployments.conftest import free_port, git
from tests.deployments.test_deploy import get, run
from tests.deployments.test_kubernetes_deploy import deploy_stage, deployment, succeeded
from tests.deployments.test_kubernetes_operations import job
from tests.hookserver import Reply
from tests.scenarios import stages_of


@pytest.fixture
def manifests_repository(tmp_path, settings):
    """A git repository whose ``deploy/web.yml`` is a Deployment of image "v1" on branch main and of "v2" on
    branch release; BAKE_LOCAL_ROOTS allows it (here and for the worker)."""
    repository = tmp_path / "manifests"
    (repository / "deploy").mkdir(parents=True)
    git(repository, "init", "-q", "-b", "main")
    settings.BAKE_LOCAL_ROOTS = [str(tmp_path)]
    return repository


def commit_web(repository, image: str, port: int, message: str) -> None:
    (repository / "deploy" / "web.yml").write_text(yaml.safe_dump(deployment("web", image, port)))
    git(repository, "add", ".")
    git(repository, "commit", "-q", "-m", message)


@pytest.fixture
def kube_worker_settings(tmp_path):
    return {"BAKE_LOCAL_ROOTS": str(tmp_path)}


def from_artifact(artifact: dict, namespace: str) -> dict:
    stage = {**deploy_stage([], namespaceOverride=namespace), "source": "artifact", "manifestArtifact": artifact}
    del stage["manifests"]
    return stage


def test_a_file_of_a_git_repository_at_a_ref_is_deployed(kube, manifests_repository):
    namespace, images = kube["namespace"], kube["images"]
    port = free_port()
    commit_web(manifests_repository, images["v1"], port, "v1")
    git(manifests_repository, "checkout", "-q", "-b", "release")
    commit_web(manifests_repository, images["v2"], port, "v2")
    git(manifests_repository, "checkout", "-q", "main")

    artifact = {"type": "git/repo", "reference": str(manifests_repository), "version": "release",
                "location": "deploy/web.yml"}
    stage = succeeded([from_artifact(artifact, namespace)])

    assert get(port) == (200, "v2")
    assert stage.outputs["outputs.manifestNamesByNamespace"] == {namespace: ["deployment web"]}

    missing = run([from_artifact({**artifact, "location": "deploy/api.yml"}, namespace)])
    assert missing.status == Status.TERMINAL
    error = str(stages_of(missing)["1"].context["exception"]["details"]["error"])
    assert error.startswith("manifestArtifact: cannot find deploy/api.yml at 'release'"), error


def test_a_github_file_is_read_at_its_version_with_the_raw_media_type(kube, hook_server):
    namespace, images = kube["namespace"], kube["images"]
    port = free_port()
    path = "/repos/shop/deploy/contents/web.yml"
    hook_server.script(f"{path}?ref=v2.0", Reply(200, yaml.safe_dump(deployment("web", images["v2"], port)),
                                                 {"Content-Type": "application/vnd.github.v3.raw"}))

    succeeded([from_artifact({"type": "github/file", "reference": hook_server.url(path), "version": "v2.0"},
                             namespace)])

    assert get(port) == (200, "v2")
    [call] = hook_server.calls(f"{path}?ref=v2.0")
    assert call.headers["accept"] == "application/vnd.github.v3.raw"


def test_an_artifact_that_cannot_be_read_is_refused_naming_the_field(manifests_repository, hook_server):
    commit_web(manifests_repository, "web:v1", 8080, "v1")
    assert "kind: Deployment" in read_git_file(str(manifests_repository), "main", "deploy/web.yml", "manifestArtifact")
    embedded = {"type": "embedded/base64", "reference": base64.b64encode(b"kind: ConfigMap\n").decode()}
    assert artifact_text(embedded, "manifestArtifact") == "kind: ConfigMap\n"
    hook_server.script("/gone", Reply(404, "no"))

    refusals = {
        "manifestArtifact: the location must be a file's path inside the repository": {
            "type": "git/repo", "reference": str(manifests_repository), "location": "../secrets.yml"},
        "manifestArtifact: a git/repo artifact needs a location": {
            "type": "git/repo", "reference": str(manifests_repository)},
        "manifestArtifact: '/etc' is not under BAKE_LOCAL_ROOTS": {
            "type": "git/repo", "reference": "/etc", "location": "passwd"},
        "manifestArtifact: must be an http(s) URL": {
            "type": "git/repo", "reference": "ssh://git@127.0.0.1/shop.git", "location": "x"},
        f"manifestArtifact: {hook_server.url('/gone')} answered 404": {
            "type": "http/file", "reference": hook_server.url("/gone")},
        "manifestArtifact: artifacts of type 'gcs/object' cannot be read here": {
            "type": "gcs/object", "reference": "gs://bucket/web.yml"},
        "manifestArtifact: the artifact is not base64 text": {"type": "embedded/base64", "reference": "%%%"},
    }
    for message, artifact in refusals.items():
        with pytest.raises(StageRefused) as refused:
            artifact_text(artifact, "manifestArtifact")
        assert str(refused.value).startswith(message), (artifact, str(refused.value))


def test_a_patch_is_read_from_a_file_of_a_git_repository_when_the_stage_runs(kube, manifests_repository):
    namespace, images, apps = kube["namespace"], kube["images"], kube["apps"]
    commit_web(manifests_repository, images["v1"], free_port(), "v1")
    (manifests_repository / "deploy" / "label.yml").write_text("metadata:\n  labels:\n    patched: from-git\n")
    git(manifests_repository, "add", ".")
    git(manifests_repository, "commit", "-q", "-m", "a patch")
    succeeded([from_artifact({"type": "git/repo", "reference": str(manifests_repository), "location":
                              "deploy/web.yml"}, namespace)])
    patch = {"refId": "1", "type": "patchManifest", "cloudProvider": "kubernetes", "account": "dev",
             "location": namespace, "manifestName": "deployment web", "source": "artifact",
             "options": {"mergeStrategy": "strategic"},
             "manifestArtifact": {"type": "git/repo", "reference": str(manifests_repository), "version": "main",
                                  "location": "deploy/label.yml"}}

    succeeded([patch])

    assert apps.read_namespaced_deployment("web", namespace).metadata.labels["patched"] == "from-git"
    missing = run([{**patch, "manifestArtifact": {**patch["manifestArtifact"], "location": "deploy/none.yml"}}])
    assert missing.status == Status.TERMINAL
    assert "manifestArtifact: cannot find deploy/none.yml" in str(
        stages_of(missing)["1"].context["exception"]["details"]["error"])


def test_a_patch_artifact_is_checked_at_save_as_far_as_it_can_be():
    stage = {"type": "patchManifest", "account": "dev", "location": "shop", "manifestName": "deployment web",
             "source": "artifact"}
    problems = PatchManifestStage().own_problems
    assert problems({**stage, "manifestArtifactId": "patch-file"}, "") == []
    assert problems({**stage, "manifestArtifact": {"type": "github/file", "reference": "https://x/y"}}, "") == []
    [missing] = problems({**stage, "manifestArtifact": {"type": "git/repo"}}, "")
    assert missing.pointer == "/manifestArtifact/reference"
    [wrong] = problems({**stage, "manifestArtifact": {"type": "gcs/object", "reference": "gs://b/p"}}, "")
    assert wrong.pointer == "/manifestArtifact" and "cannot be read here" in wrong.message


def test_a_job_is_read_from_a_file_artifact_bound_by_the_trigger_when_the_stage_runs(kube, hook_server):
    namespace, images = kube["namespace"], kube["images"]
    migration = job(images["v1"], "echo SPINNAKER_PROPERTY_V=7")
    hook_server.script("/jobs/migrate.yml", Reply(200, yaml.safe_dump(migration)))
    run_job = {"refId": "1", "type": "runJobManifest", "cloudProvider": "kubernetes", "account": "dev",
               "namespace": namespace, "source": "artifact", "manifestArtifactId": "migration"}
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "migrate", "stages": [run_job]}, user="ops")
    artifact = {"type": "http/file", "name": "migrate.yml", "reference": hook_server.url("/jobs/migrate.yml")}

    # As a trigger that bound the pipeline's expected artifact "migration" starts it.
    execution = do_start_execution(pipeline, user="ops", trigger={
        "type": "manual", "artifacts": [artifact],
        "resolvedExpectedArtifacts": [{"id": "migration", "boundArtifact": artifact}]})
    finished = wait_for_execution(execution.id, timeout=120)

    assert finished.status == Status.SUCCEEDED, stages_of(finished)["1"].context.get("exception")
    assert stages_of(finished)["1"].outputs["v"] == "7"
    assert hook_server.calls("/jobs/migrate.yml")


def run_with(stages: list[dict], **parameters):
    """The stages run as a pipeline with a ``greeting`` parameter, given ``parameters``."""
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "patch", "parameterConfig": [{"name": "greeting"}],
                                    "stages": stages}, user="ops")
    return wait_for_execution(do_start_execution(pipeline, user="ops", parameters=parameters).id, timeout=120)


def test_a_patch_read_from_git_is_evaluated_with_the_stage_expressions_unless_skipped(kube, manifests_repository):
    namespace, images, apps = kube["namespace"], kube["images"], kube["apps"]
    commit_web(manifests_repository, images["v1"], free_port(), "v1")
    (manifests_repository / "deploy" / "note.yml").write_text(
        "metadata:\n  annotations:\n    greeting: ${parameters.greeting} from ${trigger.type}\n")
    (manifests_repository / "deploy" / "broken.yml").write_text(
        "metadata:\n  annotations:\n    greeting: ${parameters.greeting.nope()}\n")
    git(manifests_repository, "add", ".")
    git(manifests_repository, "commit", "-q", "-m", "patches")
    succeeded([from_artifact({"type": "git/repo", "reference": str(manifests_repository), "location":
                              "deploy/web.yml"}, namespace)])
    patch = {"refId": "1", "type": "patchManifest", "cloudProvider": "kubernetes", "account": "dev",
             "location": namespace, "manifestName": "deployment web", "source": "artifact",
             "manifestArtifact": {"type": "git/repo", "reference": str(manifests_repository),
                                  "version": "${'main'}", "location": "deploy/note.yml"}}

    def annotation() -> str:
        return apps.read_namespaced_deployment("web", namespace).metadata.annotations["greeting"]

    finished = run_with([patch], greeting="hello")
    assert finished.status == Status.SUCCEEDED, stages_of(finished)["1"].context.get("exception")
    assert annotation() == "hello from manual"

    as_written = {**patch, "skipExpressionEvaluation": True,
                  "manifestArtifact": {**patch["manifestArtifact"], "version": "main"}}
    finished = run_with([as_written], greeting="bonjour")
    assert finished.status == Status.SUCCEEDED, stages_of(finished)["1"].context.get("exception")
    assert annotation() == "${parameters.greeting} from ${trigger.type}"

    broken = run_with([{**patch, "manifestArtifact": {**patch["manifestArtifact"], "location": "deploy/broken.yml"}}],
                      greeting="hola")
    assert broken.status == Status.TERMINAL
    error = str(stages_of(broken)["1"].context["exception"]["details"]["error"])
    assert error.startswith("manifestArtifact: an expression in the artifact's document cannot be evaluated: "
                            "${parameters.greeting.nope()}"), error
    assert annotation() == "${parameters.greeting} from ${trigger.type}"


def embedded(document: dict) -> dict:
    return {"type": "embedded/base64", "reference": base64.b64encode(yaml.safe_dump(document).encode()).decode()}


def test_a_job_in_an_embedded_artifact_is_evaluated_before_it_runs(kube):
    namespace, images = kube["namespace"], kube["images"]
    migration = job(images["v1"], "echo SPINNAKER_PROPERTY_GREETING=${parameters.greeting}")
    run_job = {"refId": "1", "type": "runJobManifest", "cloudProvider": "kubernetes", "account": "dev",
               "namespace": namespace, "source": "artifact", "manifestArtifact": embedded(migration)}

    finished = run_with([run_job], greeting="hello")

    assert finished.status == Status.SUCCEEDED, stages_of(finished)["1"].context.get("exception")
    assert stages_of(finished)["1"].outputs["greeting"] == "hello"

    unknown = job(images["v1"], "echo ${trigger.nothing}")
    missing = run_with([{**run_job, "manifestArtifact": embedded(unknown)}])
    assert missing.status == Status.TERMINAL
    error = str(stages_of(missing)["1"].context["exception"]["details"]["error"])
    assert error.startswith("manifestArtifact: an expression in the artifact's document cannot be evaluated: "
                            "${trigger.nothing}"), error


def test_skip_expression_evaluation_is_checked_and_leaves_the_artifact_unchecked_as_an_expression():
    stage = {"type": "patchManifest", "account": "dev", "location": "shop", "manifestName": "deployment web",
             "source": "artifact", "manifestArtifactId": "patch-file"}
    [wrong] = PatchManifestStage().own_problems({**stage, "skipExpressionEvaluation": "yes"}, "")
    assert wrong.pointer == "/skipExpressionEvaluation"
    [wrong] = RunJobManifestStage().validate({**stage, "type": "runJobManifest", "skipExpressionEvaluation": 1}, "")
    assert wrong.pointer == "/skipExpressionEvaluation"
    for stage_type in (PatchManifestStage(), RunJobManifestStage()):
        assert stage_type.unevaluated_fields({**stage, "skipExpressionEvaluation": True}) == ("manifestArtifact",)
        assert stage_type.unevaluated_fields(stage) == ()


class Scope:
    """The evaluation a stage's scope does, over fixed variables."""

    def __init__(self, **variables):
        self.variables = variables

    def evaluate(self, value, field: str = "", summary=None):
        return evaluate(value, self.variables, field=field, summary=summary)


def test_the_manifest_artifact_may_be_an_expression_and_its_documents_are_evaluated_unless_skipped():
    patch = {"metadata": {"annotations": {"greeting": "${parameters.greeting}"}}}
    scope = Scope(parameters={"greeting": "hello"}, trigger={"artifacts": [embedded(patch)]})
    stage = SimpleNamespace(context={"source": "artifact", "manifestArtifact": "${trigger.artifacts[0]}"})

    assert artifact_document(stage, scope) == ({"metadata": {"annotations": {"greeting": "hello"}}},
                                               "manifestArtifact")
    stage.context["skipExpressionEvaluation"] = True
    with pytest.raises(StageRefused, match="^manifestArtifact: must be an artifact"):
        artifact_document(stage, scope)
    stage.context["manifestArtifact"] = embedded(patch)
    assert artifact_document(stage, scope) == (patch, "manifestArtifact")

    two = {"type": "embedded/base64", "reference": base64.b64encode(b"a: 1\n---\nb: 2\n").decode()}
    with pytest.raises(StageRefused, match="^manifestArtifact: the artifact must hold one YAML or JSON document, "
                                           "not 2"):
        artifact_document(SimpleNamespace(context={"manifestArtifact": two}), scope)
    broken = SimpleNamespace(context={"manifestArtifact": embedded({"a": "${parameters.greeting"})})
    with pytest.raises(StageRefused, match="^manifestArtifact"):
        artifact_document(broken, scope)
