"""``docker`` triggers: a new image tag in a registry account, from the registry's notifications or by polling.

A trigger names a registry ``account`` (``apps/deployments``' registry
accounts; one not configured yet loads, and fires once it is) — or, as
older Spinnaker documents do, only the ``registry``'s address, matched
against the accounts with that address — a ``repository`` and optionally
``tag``, a regex (absent: any tag). Two ways in:

- the registry's own notifications: its ``notifications.endpoints`` entry
  posts envelopes (``application/vnd.docker.distribution.events.v1+json``)
  to ``/webhooks/docker/{account}``, with ``Authorization: Bearer`` and
  ``TRIGGER_REGISTRY_TOKEN`` in its ``headers``; only manifest pushes with a
  tag count (blob uploads and pulls are recorded and ignored), and each
  event's id is checked for replays;
- polling (:mod:`apps.triggers.polling`) for the accounts listed in
  ``TRIGGER_POLLED_REGISTRY_ACCOUNTS``, for registries that cannot notify.

The execution sees ``${trigger.tag}``, ``${trigger.digest}``,
``${trigger.repository}``, ``${trigger.account}`` and ``${trigger.registry}``,
and the image as a Spinnaker artifact in ``trigger.artifacts``
(``type: docker/image``, ``name`` registry/repository, ``reference``
name:tag, ``version`` the tag).
"""

from __future__ import annotations

from apps.accounts.permissions import READ, PermissionRefused, can
from apps.deployments.models import RegistryAccount
from apps.pipelines.patterns import matches_pattern, pattern_problem
from apps.pipelines.problems import Problem, pointer_join
from apps.pipelines.stages.base import StageField
from apps.triggers.kinds.base import (
    Event,
    TriggerKind,
    register_kind,
    text_field,
    words,
)

MANIFEST_TYPES = frozenset({
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
})


def docker_key(account: str, repository: str) -> str:
    return f"{account.strip()}/{repository.strip().strip('/')}"


def address_key(address: str, repository: str) -> str:
    """The key of a trigger that names only Spinnaker's ``registry`` (an address), not an account."""
    return docker_key(f"@{address}", repository)


class DockerKind(TriggerKind):
    type = "docker"
    fields = (
        StageField("account", label="Registry account"),
        StageField("registry", label="Registry address", help="Instead of an account: host[:port]"),
        StageField("repository", label="Repository", required=True, help="e.g. shop/web"),
        StageField("tag", label="Tag", help="A regular expression; empty: any tag"),
    )

    def key(self, trigger: dict) -> str | None:
        account, registry, repository = (trigger.get(name) for name in ("account", "registry", "repository"))
        if not isinstance(repository, str) or not repository:
            return None
        if isinstance(account, str) and account:
            return docker_key(account, repository)
        return address_key(registry, repository) if isinstance(registry, str) and registry else None

    def check(self, trigger: dict, pointer: str) -> list[Problem]:
        problems = text_field(trigger, "account", pointer) + text_field(trigger, "registry", pointer)
        problems += text_field(trigger, "repository", pointer, required=True)
        account = trigger.get("account")
        if not problems and not account and not trigger.get("registry"):
            problems.append(Problem(pointer_join(pointer, "account"), "is required (a registry account's name)"))
        # An account not configured here is no error, as in Spinnaker (a document is often imported before its
        # accounts are set up): the trigger fires once a registry account of that name exists.
        return problems + pattern_problem(trigger.get("tag"), pointer_join(pointer, "tag"))

    def describe(self, trigger: dict) -> str:
        account = trigger.get("account")
        where = f"registry {words(trigger.get('registry'))}"
        if account:
            missing = not RegistryAccount.objects.filter(name=account).exists()
            where = f"registry account {account}" + (" (not configured here yet)" if missing else "")
        return (f"Runs when an image is pushed to {where}"
                f" (repository {words(trigger.get('repository'))}, tag {words(trigger.get('tag'))})")

    def check_saver(self, user, trigger: dict, pointer: str) -> None:
        """A person saves a trigger only on a registry account they may read (its tags are what it learns)."""
        account = RegistryAccount.objects.filter(name=trigger.get("account")).first() if trigger.get(
            "account") else None
        if account is not None and not can(user, READ, account):
            raise PermissionRefused(f"You may not read registry account {account.name!r}.",
                                    field=pointer_join(pointer, "account"))

    def mismatch(self, trigger: dict, event: Event) -> str | None:
        if not matches_pattern(trigger.get("tag"), event.fields["tag"]):
            return f"tag {event.fields['tag']!r} does not match {trigger.get('tag')!r}"
        return None


DOCKER = register_kind(DockerKind())


def image_event(account: RegistryAccount, repository: str, tag: str, digest: str) -> Event:
    """The event of ``repository:tag`` (with its digest) appearing in the account's registry."""
    name = f"{account.address}/{repository}"
    artifact = {"type": "docker/image", "name": name, "reference": f"{name}:{tag}", "version": tag,
                "metadata": {"digest": digest, "account": account.name}}
    fields = {"account": account.name, "registry": account.address, "repository": repository, "tag": tag,
              "digest": digest}
    return Event("docker", docker_key(account.name, repository), fields=fields, artifacts=[artifact],
                 summary=dict(fields), aliases=[address_key(account.address, repository)])


def manifest_pushes(envelope: dict) -> tuple[list[tuple[str, str, str, str]], int]:
    """The envelope's tagged manifest pushes as (event id, repository, tag, digest), and how many events it had.

    ValueError names the field when the envelope is not one.
    """
    events = envelope.get("events")
    if not isinstance(events, list):
        raise ValueError("/events: must be a list (a registry notification envelope)")
    pushes = []
    for index, item in enumerate(events):
        target = item.get("target") if isinstance(item, dict) else None
        if not isinstance(target, dict):
            raise ValueError(f"/events/{index}/target: must be an object")
        if item.get("action") != "push" or target.get("mediaType") not in MANIFEST_TYPES or not target.get("tag"):
            continue
        repository, tag, digest = target.get("repository"), target.get("tag"), target.get("digest") or ""
        if not isinstance(repository, str) or not isinstance(tag, str) or not isinstance(digest, str):
            raise ValueError(f"/events/{index}/target: repository, tag and digest must be strings")
        pushes.append((str(item.get("id") or ""), repository, tag, digest))
    return pushes, len(events)
