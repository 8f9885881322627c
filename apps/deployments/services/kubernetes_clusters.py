"""An application's Kubernetes workloads as server groups, and a person's actions on them.

Spinnaker's Kubernetes provider shows ReplicaSets (under the Deployment that
owns them), StatefulSets and DaemonSets as server groups, their pods as
instances, and a Deployment as the "server group manager" a rollout is undone
on. They are read live from the cluster, in the namespaces a deployManifest
stage deployed the application to (:class:`ManifestNamespace`), and only those
annotated with the application's moniker count. One list call per kind and
namespace, each bounded (``MAX_LISTED``) and through the account's time-bounded
client; a cluster that does not answer is reported, not raised, so the rest of
the page still shows.

The application's Services (those annotated with its moniker) are its load
balancers, as Deck lists them: their type, cluster IP and ports as the cluster
reports them (shown, never contacted), their selector, and the server groups of
the application they route to now, those whose pod template carries every label
the selector names. They come from the one list of Services per namespace that
the server groups' traffic is read from. The application's Ingresses are load
balancers too: their rules (host, path, the Service and port each sends to) and
the server groups those Services route to; one more list call per namespace,
left out when the cluster serves no ``networking.k8s.io/v1`` Ingress or the
account may not list them.

The actions (scale, enable, disable, delete, undo a rollout) go through the
same provider code as the manifest stages, need ``execute`` on the application
and ``deploy`` on the account, respect the account's namespaces and kinds, and
are audited. A traffic guard (:func:`check_traffic_guard`) is checked here for
the actions and the manifest stages alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kubernetes.client.exceptions import ApiException

from apps.accounts.audit import Actor, record
from apps.accounts.permissions import EXECUTE
from apps.deployments.models import KubernetesAccount, ManifestNamespace, TrafficGuard
from apps.deployments.providers.kubernetes import manifests as kube_manifests
from apps.deployments.providers.kubernetes import operations as ops
from apps.deployments.providers.kubernetes import traffic
from apps.deployments.providers.kubernetes.client import (
    KubernetesUnreachable,
    api_client,
    check_kind,
    check_namespace,
)
from apps.deployments.providers.kubernetes.resources import ManifestName, UnknownKind, dynamic, resource_for
from apps.deployments.providers.kubernetes.stability import workload_stability
from apps.deployments.services.accounts import check_deploy
from apps.deployments.services.server_groups import TrafficGuarded
from apps.pipelines.checks import check_permission
from apps.pipelines.models import Application
from apps.pipelines.problems import ActionRefused

# The kinds shown as server groups, and the kind that manages ReplicaSets.
SERVER_GROUP_KINDS = ("ReplicaSet", "StatefulSet", "DaemonSet")
MANAGER_KIND = "Deployment"
# The Ingresses read as load balancers (Kubernetes 1.19 and later).
INGRESS_API_VERSION = "networking.k8s.io/v1"
# At most this many resources of one kind are read from one namespace.
MAX_LISTED = 500
ACTIONS = ("scale", "enable", "disable", "delete", "undo-rollout")
MAX_REPLICAS = 1000
MAX_REVISIONS_BACK = 100
MANAGED = f"{kube_manifests.MANAGED_BY_LABEL}={kube_manifests.FIELD_MANAGER}"
# The kinds whose removal a traffic guard weighs (a Deployment for the ReplicaSets it owns), folded.
GUARDED_KINDS = frozenset(kind.casefold() for kind in (*SERVER_GROUP_KINDS, MANAGER_KIND))


class ClusterUnavailable(Exception):
    """The account's cluster did not answer or refused the platform's credentials."""


@dataclass
class Pod:
    name: str
    health: str  # UP, DOWN, STARTING or OUT_OF_SERVICE, as a Docker instance's
    phase: str
    reason: str
    restarts: int
    created_at: str


@dataclass
class WorkloadGroup:
    """A ReplicaSet, StatefulSet or DaemonSet, as a server group."""

    account: str
    namespace: str
    kind: str
    name: str
    cluster: str
    version: int | None
    images: list[str]
    desired: int
    ready: int
    # None when it was deployed without traffic management (it is in no services of the platform's).
    enabled: bool | None
    load_balancers: list[str]
    created_at: str
    manager: str  # "deployment web" when a Deployment owns it
    stable: bool
    status: str
    pods: list[Pod] = field(default_factory=list)

    @property
    def manifest_name(self) -> str:
        return f"{kube_manifests.lower_camel(self.kind)} {self.name}"


@dataclass
class Manager:
    """A Deployment: what an undo rollout acts on."""

    name: str
    revision: int
    stable: bool
    status: str

    @property
    def manifest_name(self) -> str:
        return f"deployment {self.name}"


@dataclass
class KubernetesCluster:
    account: str
    namespace: str
    name: str
    server_groups: list[WorkloadGroup] = field(default_factory=list)
    managers: list[Manager] = field(default_factory=list)


@dataclass
class KubernetesLoadBalancer:
    """A Service or an Ingress of the application, and the server groups it routes to now (manifest names, newest
    first). A Service has its type, cluster IP, ports and selector; an Ingress its rules and the Services they name.
    """

    account: str
    namespace: str
    kind: str
    name: str
    type: str
    cluster_ip: str
    ports: list[dict]
    selector: dict[str, str]
    created_at: str
    server_groups: list[str] = field(default_factory=list)
    rules: list[dict] = field(default_factory=list)
    services: list[str] = field(default_factory=list)

    @property
    def manifest_name(self) -> str:
        return f"{kube_manifests.lower_camel(self.kind)} {self.name}"


@dataclass
class Unavailable:
    account: str
    namespace: str
    error: str


def remember_namespaces(execution_application: Application, moniker_application: str,
                        account: KubernetesAccount, namespaces: Iterable[str]) -> None:
    """Record where a deployManifest stage put an application's manifests (the moniker's application when it
    names another one the platform knows, else the execution's)."""
    application = execution_application
    if moniker_application != execution_application.name:
        application = Application.objects.filter(name=moniker_application).first() or execution_application
    for namespace in sorted(set(namespaces)):
        ManifestNamespace.objects.update_or_create(application=application, account=account, namespace=namespace)


def pod_health(pod: dict) -> tuple[str, str]:
    """(health, reason) of a pod, in the Docker instances' terms."""
    metadata, status = pod.get("metadata") or {}, pod.get("status") or {}
    if metadata.get("deletionTimestamp"):
        return "OUT_OF_SERVICE", "terminating"
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") and waiting["reason"] not in ("ContainerCreating", "PodInitializing"):
            return "DOWN", waiting["reason"]
    phase = status.get("phase") or "Pending"
    if phase in ("Failed", "Unknown"):
        return "DOWN", status.get("reason") or phase
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready and ready.get("status") == "True":
        return "UP", ""
    if phase == "Pending" or not status.get("containerStatuses"):
        return "STARTING", phase
    return "DOWN", (ready or {}).get("reason") or "not ready"


def _listed(client, kind: str, namespace: str, *, managed: bool = True, api_version: str | None = None) -> list[dict]:
    resource = resource_for(client, kind, api_version)
    found = client.get(resource, namespace=namespace or None, label_selector=MANAGED if managed else None,
                       limit=MAX_LISTED).to_dict()
    return found.get("items") or []


def _annotations(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _of_application(items: list[dict], application: str) -> list[dict]:
    return [item for item in items if _annotations(item).get(kube_manifests.APPLICATION) == application]


def _images(obj: dict) -> list[str]:
    spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [container.get("image") or "" for container in spec.get("containers") or []]


def _restarts(pod: dict) -> int:
    return sum(int(container.get("restartCount") or 0)
               for container in (pod.get("status") or {}).get("containerStatuses") or [])


def _traffic(obj: dict, selectors: dict[str, dict[str, str]]) -> tuple[bool | None, list[str]]:
    """(enabled, services) of a workload deployed with traffic management: enabled when its pod template carries
    every label its services select. (None, []) when it names no services."""
    try:
        services = json.loads(_annotations(obj).get(kube_manifests.LOAD_BALANCERS) or "[]")
        names = traffic.service_names(services)
    except ValueError:
        return None, []
    if not names:
        return None, []
    wanted: dict[str, str] = {}
    for name in names:
        wanted.update(selectors.get(name) or {})
    return routes_to(wanted, _template_labels(obj)), services


def _pod(pod: dict) -> Pod:
    health, reason = pod_health(pod)
    metadata = pod["metadata"]
    return Pod(name=metadata["name"], health=health, phase=(pod.get("status") or {}).get("phase") or "",
               reason=reason, restarts=_restarts(pod), created_at=metadata.get("creationTimestamp") or "")


def _group(account: str, namespace: str, obj: dict, pods: list[dict],
           selectors: dict[str, dict[str, str]]) -> WorkloadGroup:
    metadata, annotations = obj["metadata"], _annotations(obj)
    owners = [owner for owner in metadata.get("ownerReferences") or [] if owner.get("kind") == MANAGER_KIND]
    verdict = workload_stability(obj)
    enabled, services = _traffic(obj, selectors)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    sequence = annotations.get(kube_manifests.SEQUENCE) or ""
    desired = spec.get("replicas") if "replicas" in spec else status.get("desiredNumberScheduled")
    return WorkloadGroup(
        account=account, namespace=namespace, kind=obj["kind"], name=metadata["name"],
        cluster=annotations.get(kube_manifests.CLUSTER) or kube_manifests.default_cluster(obj),
        version=int(sequence) if sequence.isdigit() else None, images=_images(obj), desired=int(desired or 0),
        ready=int(status.get("readyReplicas") or status.get("numberReady") or 0), enabled=enabled,
        load_balancers=services, created_at=metadata.get("creationTimestamp") or "",
        manager=f"deployment {owners[0]['name']}" if owners else "", stable=verdict.stable, status=verdict.reason,
        pods=[_pod(pod) for pod in sorted(pods, key=lambda pod: pod["metadata"]["name"])])


def _owned_by(pods: list[dict]) -> dict[str, list[dict]]:
    by_owner: dict[str, list[dict]] = {}
    for pod in pods:
        for owner in pod["metadata"].get("ownerReferences") or []:
            by_owner.setdefault(owner.get("uid") or "", []).append(pod)
    return by_owner


def _template_labels(obj: dict) -> dict:
    return (((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}


def routes_to(selector: dict, labels: dict) -> bool:
    """Whether a Service with ``selector`` sends traffic to pods labelled ``labels`` (an empty selector selects no
    pods: its endpoints are kept by hand)."""
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def _port(port: dict) -> dict:
    return {"name": port.get("name") or "", "protocol": port.get("protocol") or "TCP", "port": port.get("port"),
            "targetPort": str(port.get("targetPort") if port.get("targetPort") is not None else port.get("port")),
            "nodePort": port.get("nodePort")}


def _newest_first(workloads: list[dict]) -> list[dict]:
    return sorted(workloads, key=lambda obj: (obj["metadata"].get("creationTimestamp") or "", obj["metadata"]["name"]),
                  reverse=True)


def _manifest_name(obj: dict) -> str:
    return f"{kube_manifests.lower_camel(obj['kind'])} {obj['metadata']['name']}"


def _routed(selector: dict, workloads: list[dict]) -> list[str]:
    """The manifest names of the workloads (in their order) a Service with ``selector`` routes to."""
    return [_manifest_name(obj) for obj in workloads if routes_to(selector, _template_labels(obj))]


def _selector(service: dict) -> dict[str, str]:
    return {str(key): str(value) for key, value in ((service.get("spec") or {}).get("selector") or {}).items()}


def _service_balancer(account: str, namespace: str, service: dict, workloads: list[dict]) -> KubernetesLoadBalancer:
    metadata, spec = service["metadata"], service.get("spec") or {}
    return KubernetesLoadBalancer(
        account=account, namespace=namespace, kind="Service", name=metadata["name"],
        type=spec.get("type") or "ClusterIP", cluster_ip=spec.get("clusterIP") or "",
        ports=[_port(port) for port in spec.get("ports") or []], selector=_selector(service),
        created_at=metadata.get("creationTimestamp") or "", server_groups=_routed(_selector(service), workloads))


def ingress_rules(ingress: dict) -> list[dict]:
    """One entry per path of the Ingress (and its default backend): host, path, and the Service and port."""
    spec = ingress.get("spec") or {}
    paths = [("", {"path": "", "backend": spec["defaultBackend"]})] if spec.get("defaultBackend") else []
    for rule in spec.get("rules") or []:
        paths += [(rule.get("host") or "", path) for path in (rule.get("http") or {}).get("paths") or []]
    rules = []
    for host, path in paths:
        service = (path.get("backend") or {}).get("service") or {}
        port = service.get("port") or {}
        rules.append({"host": host, "path": path.get("path") or "", "service": service.get("name") or "",
                      "port": str(port.get("number") or port.get("name") or "")})
    return rules


def _ingress_balancer(account: str, namespace: str, ingress: dict, services: list[dict],
                      workloads: list[dict]) -> KubernetesLoadBalancer:
    metadata = ingress["metadata"]
    rules = ingress_rules(ingress)
    names = sorted({rule["service"] for rule in rules if rule["service"]})
    selectors = {service["metadata"]["name"]: _selector(service) for service in services}
    routed = {group for name in names for group in _routed(selectors.get(name) or {}, workloads)}
    addresses = ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return KubernetesLoadBalancer(
        account=account, namespace=namespace, kind="Ingress", name=metadata["name"],
        type=(ingress.get("spec") or {}).get("ingressClassName") or "Ingress",
        cluster_ip=", ".join(address.get("ip") or address.get("hostname") or "" for address in addresses),
        ports=[], selector={}, created_at=metadata.get("creationTimestamp") or "",
        server_groups=[_manifest_name(obj) for obj in workloads if _manifest_name(obj) in routed], rules=rules,
        services=[f"service {name}" for name in names])


def _ingresses(client, namespace: str) -> list[dict]:
    """The namespace's Ingresses; none when the cluster serves no networking.k8s.io/v1 Ingress or the account
    may not list them (the rest of the namespace still shows)."""
    try:
        return _listed(client, "Ingress", namespace, managed=False, api_version=INGRESS_API_VERSION)
    except UnknownKind:
        return []
    except ApiException as error:
        if error.status in (403, 404):
            return []
        raise


def read_namespace(account: KubernetesAccount, namespace: str,
                   application: str) -> tuple[list[KubernetesCluster], list[KubernetesLoadBalancer]]:
    """The application's clusters and load balancers in one namespace of the account, read now.
    ClusterUnavailable when the cluster does not answer or refuses."""
    try:
        with api_client(account) as api:
            client = dynamic(api)
            workloads = [item for kind in SERVER_GROUP_KINDS
                         for item in _of_application(_listed(client, kind, namespace), application)]
            deployments = _of_application(_listed(client, MANAGER_KIND, namespace), application)
            pods = _owned_by(_listed(client, "Pod", namespace)) if workloads else {}
            services = _listed(client, "Service", namespace, managed=False)
            ingresses = _of_application(_ingresses(client, namespace), application)
    except (KubernetesUnreachable, UnknownKind) as error:
        raise ClusterUnavailable(str(error)) from None
    except ApiException as error:
        raise ClusterUnavailable(str(ops.api_error(error, f"reading namespace {namespace or '(cluster)'}"))) from None
    selectors = {service["metadata"]["name"]: (service.get("spec") or {}).get("selector") or {}
                 for service in services}
    clusters: dict[str, KubernetesCluster] = {}
    for obj in workloads:
        group = _group(account.name, namespace, obj, pods.get(obj["metadata"].get("uid") or "", []), selectors)
        clusters.setdefault(group.cluster, KubernetesCluster(account.name, namespace, group.cluster))
        clusters[group.cluster].server_groups.append(group)
    for deployment in deployments:
        cluster = _annotations(deployment).get(kube_manifests.CLUSTER) or kube_manifests.default_cluster(deployment)
        verdict = workload_stability(deployment)
        clusters.setdefault(cluster, KubernetesCluster(account.name, namespace, cluster)).managers.append(
            Manager(deployment["metadata"]["name"], ops.revision_of(deployment), verdict.stable, verdict.reason))
    for cluster in clusters.values():
        cluster.server_groups.sort(key=lambda group: (group.created_at, group.name), reverse=True)
    newest = _newest_first(workloads)
    balancers = [_service_balancer(account.name, namespace, service, newest)
                 for service in _of_application(services, application)]
    balancers += [_ingress_balancer(account.name, namespace, ingress, services, newest) for ingress in ingresses]
    return ([clusters[name] for name in sorted(clusters)],
            sorted(balancers, key=lambda balancer: (balancer.kind != "Service", balancer.name)))


@dataclass
class KubernetesView:
    """What an application runs on Kubernetes, read now: its clusters, its load balancers, and the namespaces
    whose cluster did not answer."""

    clusters: list[KubernetesCluster] = field(default_factory=list)
    load_balancers: list[KubernetesLoadBalancer] = field(default_factory=list)
    unavailable: list[Unavailable] = field(default_factory=list)


def kubernetes_clusters_of(application: Application) -> KubernetesView:
    """The application's Kubernetes clusters and load balancers in every namespace it was deployed to, and the
    namespaces whose cluster did not answer."""
    view = KubernetesView()
    for place in ManifestNamespace.objects.filter(application=application).select_related("account"):
        try:
            clusters, balancers = read_namespace(place.account, place.namespace, application.name)
        except ClusterUnavailable as error:
            view.unavailable.append(Unavailable(place.account.name, place.namespace, str(error)))
            continue
        view.clusters += clusters
        view.load_balancers += balancers
    return view


# --- Traffic guards ---------------------------------------------------------------------------------


def _desired(obj: dict) -> int:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return int((spec.get("replicas") if "replicas" in spec else status.get("desiredNumberScheduled")) or 0)


def _serving(obj: dict, selectors: dict[str, dict[str, str]]) -> bool:
    """Whether a workload takes traffic: in its services (or deployed without traffic management, so its pods
    take whatever traffic reaches them), wanting at least one pod, and not on its way out."""
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return False
    enabled, _ = _traffic(obj, selectors)
    return enabled is not False and _desired(obj) > 0


def _cluster_of(obj: dict) -> tuple[str, str]:
    """(application, moniker cluster) of a workload."""
    annotations = _annotations(obj)
    return annotations.get(kube_manifests.APPLICATION) or "", \
        annotations.get(kube_manifests.CLUSTER) or kube_manifests.default_cluster(obj)


def check_traffic_guard(client, account: KubernetesAccount, namespace: str, leaving: Sequence[ManifestName], *,
                        change: str) -> None:
    """Refuse (TrafficGuarded, naming the guard) a change that would leave a guarded cluster with no enabled
    server group: ``leaving`` are the resources a disable, a delete or a scale to 0 takes out of service (a
    Deployment stands for the ReplicaSets it owns). As Spinnaker's, only taking out the last enabled, non-empty
    server group is refused; a disabled or empty one may always go. The one check the clusters page and API
    actions and the manifest stages (disable, delete, scale, deploy's red/black and highlander) share; it reads
    the namespace only when the account guards a cluster in it."""
    wanted = {(item.kind.casefold(), item.name) for item in leaving}
    if not any(kind in GUARDED_KINDS for kind, _ in wanted):
        return
    guards = {(guard.application.name, guard.cluster): guard for guard in TrafficGuard.objects.filter(
        kubernetes_account=account, location=namespace).select_related("application")}
    if not guards:
        return
    workloads = [{**item, "kind": item.get("kind") or kind} for kind in SERVER_GROUP_KINDS
                 for item in _listed(client, kind, namespace, managed=False)]
    if not any(_cluster_of(obj) in guards for obj in workloads):
        return
    managers = {item["metadata"].get("uid") for item in _listed(client, MANAGER_KIND, namespace, managed=False)
                if (MANAGER_KIND.casefold(), item["metadata"]["name"]) in wanted} if any(
        kind == MANAGER_KIND.casefold() for kind, _ in wanted) else set()

    def goes(obj: dict) -> bool:
        metadata = obj["metadata"]
        return (obj["kind"].casefold(), metadata["name"]) in wanted or any(
            owner.get("uid") in managers for owner in metadata.get("ownerReferences") or [])

    services = _listed(client, "Service", namespace, managed=False)
    selectors = {service["metadata"]["name"]: (service.get("spec") or {}).get("selector") or {}
                 for service in services}
    members: dict[tuple[str, str], list[dict]] = {}
    for obj in workloads:
        members.setdefault(_cluster_of(obj), []).append(obj)
    for key, guard in sorted(guards.items()):
        going = [obj for obj in members.get(key, []) if goes(obj)]
        if not any(_serving(obj, selectors) for obj in going):
            continue
        if any(_serving(obj, selectors) for obj in members[key] if not goes(obj)):
            continue
        names = ", ".join(f"{kube_manifests.lower_camel(obj['kind'])} {obj['metadata']['name']}" for obj in going)
        raise TrafficGuarded(f"cluster {guard.cluster} in {account.name}/{namespace} has a traffic guard "
                             f"(application {guard.application.name}): {change} {names} would leave it with no "
                             "enabled server group")


# --- Actions ----------------------------------------------------------------------------------------


def _checked_target(account: KubernetesAccount, namespace: str, kind: str, name: str) -> ManifestName:
    check_namespace(account, namespace, pointer="/namespace")
    check_kind(account, kind, pointer="/kind")
    try:
        return ManifestName.parse(f"{kind} {name}")
    except ValueError as error:
        raise ActionRefused(str(error)) from None


def do_manifest_action(application: Application, account: KubernetesAccount, namespace: str, kind: str,
                       name: str, action: str, *, actor: Actor | str, replicas: int | None = None,
                       revisions_back: int = 1) -> dict:
    """Do ``action`` on the application's resource ``kind name`` in ``namespace`` as ``actor`` and audit it;
    what was done. Raises PermissionRefused, InvalidDocument (the account may not touch the namespace or kind),
    ActionRefused (409: not the application's, not a kind the action applies to, bad input, a traffic guard) or
    ClusterUnavailable.
    """
    check_permission(actor, EXECUTE, application, field="application")
    check_deploy(actor, account, field="account")
    if action not in ACTIONS:
        raise ActionRefused(f"action must be one of {', '.join(ACTIONS)}")
    target = _checked_target(account, namespace, kind, name)
    details: dict = {"account": account.name, "namespace": namespace, "manifest": str(target)}
    try:
        with api_client(account) as api:
            client = dynamic(api)
            resource = ops.read(client, target, namespace)
            if _annotations(resource).get(kube_manifests.APPLICATION) != application.name:
                raise ActionRefused(f"{target} in {namespace} is not a resource of application {application.name}")
            details.update(_act(client, account, target, namespace, resource, action, replicas, revisions_back))
    except TrafficGuarded as guarded:
        raise ActionRefused(str(guarded)) from None
    except (KubernetesUnreachable, UnknownKind) as error:
        raise ClusterUnavailable(str(error)) from None
    except ApiException as error:
        raise ClusterUnavailable(str(ops.api_error(error, f"{action} {target}"))) from None
    except (ops.OperationFailed, kube_manifests.ManifestFailed) as error:
        raise ActionRefused(str(error)) from None
    record(f"manifest.{action}", actor, application=application, object_type="manifest",
           object_id=f"{account.name}/{namespace}/{target}", details=details)
    return details


def _act(client, account: KubernetesAccount, target: ManifestName, namespace: str, resource: dict, action: str,
         replicas: int | None, revisions_back: int) -> dict:
    if action == "scale":
        if not isinstance(replicas, int) or isinstance(replicas, bool) or not 0 <= replicas <= MAX_REPLICAS:
            raise ActionRefused(f"replicas must be a whole number from 0 to {MAX_REPLICAS}")
        if replicas == 0 and target.kind.casefold() in ops.SCALABLE_KINDS:
            check_traffic_guard(client, account, namespace, [target], change="scaling to 0")
        ops.scale(client, target, namespace, replicas)
        return {"from": (resource.get("spec") or {}).get("replicas"), "to": replicas}
    if action in ("enable", "disable"):
        if target.kind.casefold() != "replicaset":
            raise ActionRefused("only a ReplicaSet moves in and out of its services")
        if action == "disable":
            check_traffic_guard(client, account, namespace, [target], change="disabling")
        return {"podsChanged": traffic.set_traffic(client, resource, enabled=action == "enable")}
    if action == "delete":
        check_traffic_guard(client, account, namespace, [target], change="deleting")
        return {"deleted": ops.delete(client, target, namespace, cascading=True)}
    if not isinstance(revisions_back, int) or isinstance(revisions_back, bool) or \
            not 1 <= revisions_back <= MAX_REVISIONS_BACK:
        raise ActionRefused(f"revisionsBack must be a whole number from 1 to {MAX_REVISIONS_BACK}")
    return {"restoredRevision": ops.undo_rollout(client, target, namespace, revisions_back)}
