"""Polling registries that cannot notify: each new matching tag fires once; the first poll only records.

For every registry account in ``TRIGGER_POLLED_REGISTRY_ACCOUNTS`` the
periodic job ``triggers.poll-registries`` (every
``TRIGGER_POLL_INTERVAL_SECONDS``, once across all workers) lists the tags
(``GET /v2/<repository>/tags/list``) of each repository an enabled docker
trigger of that account names, through the outbound policy, with the
account's credentials. The first poll of a repository records what exists
and fires nothing. After that a tag never seen is looked up for its digest
(``HEAD /v2/<repository>/manifests/<tag>``) and recorded
(:class:`~apps.triggers.models.PolledTag`) in the transaction that fires its
triggers, so it fires once even if two polls overlap. A registry that does
not answer is logged and polled again next time.
"""

from __future__ import annotations

import base64
import json
import logging
from urllib.parse import quote

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.deployments.credentials import decrypted
from apps.deployments.models import RegistryAccount
from apps.pipelines import outbound
from apps.triggers.kinds import docker
from apps.triggers.models import PolledTag, TriggerIndex
from apps.triggers.services import Inbound, candidates, do_fire

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10
# Marks a repository polled at least once (a tag name cannot be empty).
POLLED = ""
ACCEPT = ", ".join(sorted(docker.MANIFEST_TYPES))


def _base(account: RegistryAccount) -> str:
    return f"{'http' if account.insecure else 'https'}://{account.address}"


def _headers(account: RegistryAccount) -> dict[str, str]:
    password = decrypted(account.credentials)
    if not account.username and not password:
        return {}
    pair = base64.b64encode(f"{account.username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def registry_tags(account: RegistryAccount, repository: str) -> list[str]:
    """The repository's tags; OutboundError when the registry cannot be read."""
    url = f"{_base(account)}/v2/{quote(repository)}/tags/list"
    response = outbound.request("GET", url, headers=_headers(account), timeout=TIMEOUT_SECONDS)
    if response.status_code == 404:
        return []
    if response.status_code != 200:
        raise outbound.OutboundError(f"{url} answered {response.status_code}")
    tags = json.loads(response.content).get("tags") or []
    return [tag for tag in tags if isinstance(tag, str) and tag]


def tag_digest(account: RegistryAccount, repository: str, tag: str) -> str:
    url = f"{_base(account)}/v2/{quote(repository)}/manifests/{quote(tag)}"
    response = outbound.request("HEAD", url, headers={**_headers(account), "Accept": ACCEPT},
                                timeout=TIMEOUT_SECONDS)
    return response.headers.get("Docker-Content-Digest", "") if response.status_code == 200 else ""


def poll_repository(account: RegistryAccount, repository: str) -> int:
    """Poll one repository; returns how many new tags fired."""
    tags = registry_tags(account, repository)
    seen = set(PolledTag.objects.filter(registry=account.name, repository=repository).values_list("tag", flat=True))
    if POLLED not in seen:
        PolledTag.objects.bulk_create([PolledTag(registry=account.name, repository=repository, tag=tag)
                                       for tag in [POLLED, *tags]], ignore_conflicts=True)
        return 0
    fired = 0
    for tag in tags:
        if tag in seen:
            continue
        digest = tag_digest(account, repository, tag)
        event = docker.image_event(account, repository, tag, digest)
        try:
            with transaction.atomic():
                PolledTag.objects.create(registry=account.name, repository=repository, tag=tag, digest=digest)
                do_fire(Inbound(source=f"docker-poll/{account.name}", delivery_id=f"{repository}:{tag}"), event,
                        candidates("docker", [event.key, *event.aliases]))
        except IntegrityError:
            continue  # another poll recorded it first, and fired it
        fired += 1
    return fired


def poll_registries() -> int:
    """The periodic job: poll every repository the enabled docker triggers of the polled accounts name."""
    names = settings.TRIGGER_POLLED_REGISTRY_ACCOUNTS
    if not names:
        return 0
    accounts = {account.name: account for account in RegistryAccount.objects.filter(name__in=names)}
    keys = TriggerIndex.objects.filter(type="docker", enabled=True).values_list("definition", flat=True)
    by_address = {account.address: name for name, account in accounts.items()}
    wanted = {(d.get("account") or by_address.get(d.get("registry")), d.get("repository")) for d in keys}
    wanted = {(name, repository) for name, repository in wanted if name in accounts and isinstance(repository, str)}
    fired = 0
    for account_name, repository in sorted(wanted):
        try:
            fired += poll_repository(accounts[account_name], repository)
        except (outbound.OutboundError, ValueError) as failure:
            logger.warning("polling %s/%s failed: %s", account_name, repository, failure)
    return fired
