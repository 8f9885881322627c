"""The clusters page of an application (Deck's clusters tab): clusters, server groups, instances, load balancers,
traffic guards; the server group actions and the guards' forms for those who may.

Actions go through the same services as the API (``services/actions.py``,
``services/traffic_guards.py``); a refusal is shown on the page with 409.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.permissions import DEPLOY, EXECUTE, WRITE, can
from apps.deployments.api.clusters import clusters_of
from apps.deployments.models import DockerAccount, KubernetesAccount, ServerGroup
from apps.deployments.services import kubernetes_clusters
from apps.deployments.services.actions import ACTIONS, EngineFailed, do_server_group_action
from apps.deployments.services.traffic_guards import (
    CLOUD_PROVIDERS,
    do_add_traffic_guard,
    do_remove_traffic_guard,
    guard_to_remove,
    guards_of,
)
from apps.pipelines.models import Application
from apps.pipelines.problems import ActionRefused, InvalidDocument
from apps.pipelines.views.common import readable, web_actor


def _page(request, application, *, refusal: str = "", status: int = 200):
    found = clusters_of(application)
    accounts = {cluster["account"] for cluster in found["clusters"]}
    may_execute = can(request.user, EXECUTE, application)
    deployable = {account.name for account in DockerAccount.objects.filter(name__in=accounts)
                  if may_execute and can(request.user, DEPLOY, account)}
    for cluster in found["clusters"]:
        cluster["may_act"] = cluster["account"] in deployable
    kubernetes_accounts = {cluster.account for cluster in found["kubernetesClusters"]}
    kubernetes_deployable = {account.name for account in KubernetesAccount.objects.filter(name__in=kubernetes_accounts)
                             if may_execute and can(request.user, DEPLOY, account)}
    guards = guards_of(application)
    guarded = {(guard["account"], guard["location"], guard["cluster"]) for guard in guards if guard["location"]}
    kubernetes = [{"cluster": cluster, "may_act": cluster.account in kubernetes_deployable,
                   "guarded": (cluster.account, cluster.namespace, cluster.name) in guarded}
                  for cluster in found["kubernetesClusters"]]
    return render(request, "deployments/clusters.html", {
        "application": application, "clusters": found["clusters"], "loadBalancers": found["loadBalancers"],
        "kubernetes": kubernetes, "kubernetesLoadBalancers": found["kubernetesLoadBalancers"],
        "unavailable": found["unavailable"],
        "manifest_actions": kubernetes_clusters.ACTIONS,
        "guards": guards, "refusal": refusal,
        "may_write": can(request.user, WRITE, application), "actions": ACTIONS,
        "engine_accounts": list(DockerAccount.objects.order_by("name").values_list("name", flat=True)),
        "kubernetes_accounts": list(KubernetesAccount.objects.order_by("name").values_list("name", flat=True)),
    }, status=status)


@login_required
def application_clusters(request, name: str):
    """What the application runs, with the actions its deployers may take."""
    return _page(request, readable(Application.objects.named(name), request.user))


@login_required
@require_POST
def server_group_action(request, name: str, account: str, server_group: str, action: str):
    """One action on one server group; back to the page, or the page with the refusal (409)."""
    application = readable(Application.objects.named(name), request.user)
    group = get_object_or_404(ServerGroup.objects.select_related("account", "application"), application=application,
                              account__name=account, name=server_group, destroyed_at=None)
    desired = None
    if action == "resize":
        raw = request.POST.get("desired", "")
        if not raw.strip().isdigit():
            return _page(request, application, refusal="capacity.desired must be a whole number from 0 to 100",
                         status=400)
        desired = int(raw)
    try:
        do_server_group_action(group, action, actor=web_actor(request), desired=desired)
    except ActionRefused as refused:
        return _page(request, application, refusal=str(refused), status=409)
    except EngineFailed as error:
        return _page(request, application, refusal=str(error), status=503)
    messages.success(request, f"{action.capitalize()}: {group.name}.")
    return redirect("deployments:clusters", name=application.name)


@login_required
@require_POST
def manifest_action(request, name: str, account: str, namespace: str, kind: str, resource: str, action: str):
    """One action on one of the application's Kubernetes resources; back to the page, or the page with the
    refusal (400, 409 or 503)."""
    application = readable(Application.objects.named(name), request.user)
    cluster_account = get_object_or_404(KubernetesAccount, name=account)
    replicas, revisions_back = None, 1
    if action == "scale":
        raw = request.POST.get("replicas", "")
        if not raw.strip().isdigit():
            return _page(request, application, refusal="replicas must be a whole number from 0 to "
                                                        f"{kubernetes_clusters.MAX_REPLICAS}", status=400)
        replicas = int(raw)
    try:
        done = kubernetes_clusters.do_manifest_action(application, cluster_account, namespace, kind, resource,
                                                      action, actor=web_actor(request), replicas=replicas,
                                                      revisions_back=revisions_back)
    except InvalidDocument as error:
        return _page(request, application, refusal=str(error), status=400)
    except ActionRefused as refused:
        return _page(request, application, refusal=str(refused), status=409)
    except kubernetes_clusters.ClusterUnavailable as error:
        return _page(request, application, refusal=str(error), status=503)
    messages.success(request, f"{action.capitalize()}: {done['manifest']} in {namespace}.")
    return redirect("deployments:clusters", name=application.name)


@login_required
@require_POST
def add_traffic_guard(request, name: str):
    """Guard one of the application's clusters (write)."""
    application = readable(Application.objects.named(name), request.user)
    document = {key: request.POST.get(key, "") for key in ("account", "stack", "detail", "location", "cluster")}
    # The form's choice is "docker:NAME" or "kubernetes:NAME" (account names hold no colon).
    provider, _, account = document["account"].partition(":")
    if account and provider in CLOUD_PROVIDERS:
        document.update(account=account, cloudProvider=provider)
    try:
        guard = do_add_traffic_guard(application, document, actor=web_actor(request))
    except InvalidDocument as error:
        return _page(request, application, refusal=str(error), status=400)
    except ActionRefused as refused:
        return _page(request, application, refusal=str(refused), status=409)
    place = f"{guard.account_name}, namespace {guard.location}" if guard.location else guard.account_name
    messages.success(request, f"Cluster {guard.cluster} on {place} is guarded.")
    return redirect("deployments:clusters", name=application.name)


@login_required
@require_POST
def remove_traffic_guard(request, name: str, account: str, cluster: str):
    """Remove a guard of the application (write)."""
    application = readable(Application.objects.named(name), request.user)
    try:
        guard = guard_to_remove(application, account, cluster, request.POST.get("location", "")[:253])
    except InvalidDocument as error:
        return _page(request, application, refusal=str(error), status=400)
    if guard is None:
        raise Http404(f"No traffic guard of cluster {cluster!r} on {account!r}.")
    do_remove_traffic_guard(guard, actor=web_actor(request))
    messages.success(request, f"Cluster {cluster} on {account} is no longer guarded.")
    return redirect("deployments:clusters", name=application.name)
