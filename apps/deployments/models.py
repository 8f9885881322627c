"""Deployment accounts (Docker engines, registries, Kubernetes clusters), the artifact accounts stages read files
with, and their grant tables; server groups and load balancers."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from apps.accounts.permissions import RestrictedQuerySet

account_name_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9-]{0,62}$",
    "Account names are lowercase letters, digits and hyphens, starting with a letter or digit.",
)

# The account a Docker engine reachable through DOCKER_HOST (or the default socket) is, with no configuration.
LOCAL_ACCOUNT = "local"


class RegistryAccount(models.Model):
    """A container registry images are pushed to (bake) and pulled from (deploy), with write-only credentials.

    ``credentials`` is a Fernet token (apps/pipelines/secrets/crypto.py) of the
    password or token; blank for a registry that needs none. Nothing reads it
    back: the API, the admin and the YAML loader only set or clear it.
    """

    name = models.CharField(max_length=63, unique=True, validators=[account_name_validator])
    address = models.CharField(max_length=255, help_text="host[:port] of the registry, e.g. 127.0.0.1:5000")
    insecure = models.BooleanField(default=False, help_text="Plain HTTP, or HTTPS without verifying the certificate.")
    username = models.CharField(max_length=255, blank=True)
    credentials = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [
            ("deploy_registryaccount", "Can push images to and pull images from the registry"),
            ("manage_registryaccount", "Can change the registry account and grant permissions on it"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_credentials(self) -> bool:
        return bool(self.credentials)


class DockerAccount(models.Model):
    """A Docker engine server groups are deployed to: a unix socket or ``tcp://`` (optionally TLS).

    ``host`` blank means "from the environment": DOCKER_HOST, or the default
    socket. ``client_key`` (TLS) is write-only, encrypted as registry credentials are.
    """

    name = models.CharField(max_length=63, unique=True, validators=[account_name_validator])
    host = models.CharField(max_length=255, blank=True,
                            help_text="unix:///path/docker.sock or tcp://host:2376; blank: DOCKER_HOST or the default")
    tls = models.BooleanField(default=False, help_text="Talk TLS to a tcp:// engine.")
    tls_verify = models.BooleanField(default=True, help_text="Verify the engine's certificate against ca_cert.")
    ca_cert = models.TextField(blank=True, help_text="PEM of the CA that signed the engine's certificate.")
    client_cert = models.TextField(blank=True, help_text="PEM of the client certificate.")
    client_key = models.TextField(blank=True, editable=False)
    registries = models.ManyToManyField(RegistryAccount, blank=True, related_name="docker_accounts",
                                        help_text="Registries this engine pulls images from.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [
            ("deploy_dockeraccount", "Can deploy to, resize, enable, disable and destroy on the engine"),
            ("manage_dockeraccount", "Can change the engine account and grant permissions on it"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_client_key(self) -> bool:
        return bool(self.client_key)


class KubernetesAccount(models.Model):
    """A Kubernetes cluster manifests are deployed to, as Spinnaker's Clouddriver configures one.

    Exactly one credential source: ``kubeconfig`` (the contents of a
    kubeconfig, write-only and encrypted as a Docker client key is, with
    ``kubeconfig_digest`` so saving the same contents again changes nothing),
    ``kubeconfig_file`` (a path on the worker) or ``in_cluster`` (the service
    account of the pod the worker runs in). ``context`` picks one of the
    kubeconfig's contexts (blank: its current context). ``namespaces`` and
    ``kinds``, when not empty, are the only namespaces and kinds the account
    may touch; ``omit_namespaces`` and ``omit_kinds`` are never touched
    (apps/deployments/providers/kubernetes/client.py checks both).
    """

    name = models.CharField(max_length=63, unique=True, validators=[account_name_validator])
    kubeconfig = models.TextField(blank=True, editable=False)
    # HMAC of the kubeconfig's plain contents (apps/deployments/services/kubernetes_accounts.py): telling the same
    # contents from new ones without opening the token.
    kubeconfig_digest = models.CharField(max_length=64, blank=True, editable=False)
    kubeconfig_file = models.CharField(max_length=1024, blank=True,
                                       help_text="Absolute path of a kubeconfig file on the worker.")
    context = models.CharField(max_length=253, blank=True, help_text="The kubeconfig context; blank: its current one.")
    in_cluster = models.BooleanField(default=False, help_text="The service account of the pod the worker runs in.")
    namespaces = models.JSONField(default=list, blank=True,
                                  help_text="The only namespaces it may touch; empty: any.")
    omit_namespaces = models.JSONField(default=list, blank=True, help_text="Namespaces it never touches.")
    kinds = models.JSONField(default=list, blank=True, help_text="The only kinds it may touch; empty: any.")
    omit_kinds = models.JSONField(default=list, blank=True, help_text="Kinds it never touches.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [
            ("deploy_kubernetesaccount", "Can deploy, patch, scale and delete manifests on the cluster"),
            ("manage_kubernetesaccount", "Can change the cluster account and grant permissions on it"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_kubeconfig(self) -> bool:
        return bool(self.kubeconfig)


class ArtifactType(models.TextChoices):
    """The artifact types an artifact account reads, as Clouddriver's artifact credentials name them."""

    GIT_REPO = "git/repo", "git/repo"
    GITHUB_FILE = "github/file", "github/file"
    GITLAB_FILE = "gitlab/file", "gitlab/file"
    BITBUCKET_FILE = "bitbucket/file", "bitbucket/file"
    HTTP_FILE = "http/file", "http/file"


class ArtifactAccount(models.Model):
    """Credentials a stage reads artifacts of one ``type`` with (Clouddriver's artifact accounts): a git
    repository over http(s), a file of GitHub's, GitLab's or Bitbucket's API, a file an HTTP server holds.

    ``password`` and ``token`` are write-only Fernet tokens, as a registry's credentials are; ``token_file``
    and ``username_password_file`` (``username:password``) are paths on the worker, read each time the
    account is used (apps/deployments/services/artifact_accounts.py).
    """

    name = models.CharField(max_length=63, unique=True, validators=[account_name_validator])
    type = models.CharField(max_length=20, choices=ArtifactType.choices)
    username = models.CharField(max_length=255, blank=True)
    password = models.TextField(blank=True, editable=False)
    token = models.TextField(blank=True, editable=False)
    token_file = models.CharField(max_length=1024, blank=True,
                                  help_text="Absolute path of a file on the worker holding the token.")
    username_password_file = models.CharField(max_length=1024, blank=True,
                                              help_text="Absolute path of a file on the worker holding "
                                                        "username:password.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [
            ("use_artifactaccount", "Can read artifacts with the account's credentials in a pipeline"),
            ("manage_artifactaccount", "Can change the artifact account and grant permissions on it"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_password(self) -> bool:
        return bool(self.password)

    @property
    def has_token(self) -> bool:
        return bool(self.token)


class ManifestNamespace(models.Model):
    """A namespace of a Kubernetes account that a deployManifest stage deployed an application's manifests to:
    where the clusters page and API look for the application's workloads (read live from the cluster, as
    apps/deployments/services/kubernetes_clusters.py does)."""

    application = models.ForeignKey("pipelines.Application", on_delete=models.CASCADE,
                                    related_name="manifest_namespaces")
    account = models.ForeignKey(KubernetesAccount, on_delete=models.CASCADE, related_name="manifest_namespaces")
    namespace = models.CharField(max_length=253)
    last_deployed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["account__name", "namespace"]
        constraints = [models.UniqueConstraint(fields=["application", "account", "namespace"],
                                               name="one_manifest_namespace_per_application")]

    def __str__(self) -> str:
        return f"{self.application_id}: {self.account_id}/{self.namespace}"


class ArtifactAccountUserPermission(UserObjectPermissionBase):
    """A permission on one artifact account granted to one user."""

    content_object = models.ForeignKey(ArtifactAccount, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        pass


class ArtifactAccountGroupPermission(GroupObjectPermissionBase):
    """A permission on one artifact account granted to a group (a team)."""

    content_object = models.ForeignKey(ArtifactAccount, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        pass


class KubernetesAccountUserPermission(UserObjectPermissionBase):
    """A permission on one Kubernetes cluster account granted to one user."""

    content_object = models.ForeignKey(KubernetesAccount, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        pass


class KubernetesAccountGroupPermission(GroupObjectPermissionBase):
    """A permission on one Kubernetes cluster account granted to a group (a team)."""

    content_object = models.ForeignKey(KubernetesAccount, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        pass


class DockerAccountUserPermission(UserObjectPermissionBase):
    """A permission on one Docker engine account granted to one user."""

    content_object = models.ForeignKey(DockerAccount, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        pass


class DockerAccountGroupPermission(GroupObjectPermissionBase):
    """A permission on one Docker engine account granted to a group (a team)."""

    content_object = models.ForeignKey(DockerAccount, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        pass


class RegistryAccountUserPermission(UserObjectPermissionBase):
    """A permission on one registry account granted to one user."""

    content_object = models.ForeignKey(RegistryAccount, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        pass


class RegistryAccountGroupPermission(GroupObjectPermissionBase):
    """A permission on one registry account granted to a group (a team)."""

    content_object = models.ForeignKey(RegistryAccount, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        pass


# --- What runs on the accounts: load balancers, server groups, their instances ------------------


class LoadBalancer(models.Model):
    """A real proxy (nginx) the platform runs and configures, sending traffic to enabled server groups' instances.

    It listens on LOAD_BALANCER_BIND_ADDRESS at each listener's
    ``externalPort``, and is reloaded gracefully when the set of instances it
    sends to changes (apps/deployments/providers/nginx.py).
    """

    application = models.ForeignKey("pipelines.Application", on_delete=models.CASCADE, related_name="load_balancers")
    account = models.ForeignKey(DockerAccount, on_delete=models.PROTECT, related_name="load_balancers")
    name = models.CharField(max_length=63, validators=[account_name_validator])
    # [{externalProtocol, externalPort, internalProtocol, internalPort}]
    listeners = models.JSONField(default=list)
    # {path, intervalSec, timeoutSec, healthyThreshold, unhealthyThreshold}
    health_check = models.JSONField(default=dict, blank=True)
    # The instances it sends to as last configured: ["127.0.0.1:PORT", ...] (what the proxy's config holds).
    targets = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    permission_path = "application"
    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="unique_load_balancer_per_account")]

    def __str__(self) -> str:
        return self.name


class ServerGroup(models.Model):
    """One versioned deployment of a cluster (``app-stack-detail-v003``): ``desired`` containers of one image.

    ``enabled`` says whether its load balancers send it traffic;
    ``traffic_instances`` (rolling red/black) limits that to its first N
    instances while traffic moves, None meaning all. A destroyed group keeps
    its row, with ``destroyed_at``, for the cluster's history.
    """

    application = models.ForeignKey("pipelines.Application", on_delete=models.CASCADE, related_name="server_groups")
    account = models.ForeignKey(DockerAccount, on_delete=models.PROTECT, related_name="server_groups")
    cluster = models.CharField(max_length=200)
    name = models.CharField(max_length=210)
    version = models.PositiveIntegerField()
    image = models.CharField(max_length=500)
    desired = models.PositiveIntegerField(default=1)
    enabled = models.BooleanField(default=False)
    traffic_instances = models.PositiveIntegerField(null=True, blank=True)
    load_balancers = models.JSONField(default=list, blank=True)
    # containerPort, command, env, resources, healthCheck: what each instance is started with.
    spec = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    destroyed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=150, blank=True)

    permission_path = "application"
    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["cluster", "-version", "-created_at"]
        indexes = [models.Index(fields=["account", "cluster"], name="server_group_cluster")]
        constraints = [models.UniqueConstraint(fields=["account", "name"], condition=models.Q(destroyed_at=None),
                                               name="unique_live_server_group")]

    def __str__(self) -> str:
        return self.name


class InstanceHealth(models.TextChoices):
    UP = "UP"
    DOWN = "DOWN"
    STARTING = "STARTING"
    OUT_OF_SERVICE = "OUT_OF_SERVICE"


class Instance(models.Model):
    """One container of a server group; a replaced or removed one keeps its row (``ended_at``, ``ended_reason``)."""

    server_group = models.ForeignKey(ServerGroup, on_delete=models.CASCADE, related_name="instances")
    container_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255)
    host_port = models.PositiveIntegerField(null=True, blank=True)
    health = models.CharField(max_length=20, choices=InstanceHealth.choices, default=InstanceHealth.STARTING)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_reason = models.CharField(max_length=200, blank=True)

    permission_path = "server_group__application"
    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["server_group", "created_at"]

    def __str__(self) -> str:
        return self.name


class TrafficGuard(models.Model):
    """Spinnaker's traffic guard: the cluster never loses its last enabled server group to a disable, destroy or
    resize, whoever asks.

    It names a cluster on a Docker engine ``account`` (``location`` blank) or on a ``kubernetes_account`` in the
    namespace ``location`` (the cluster is then the workloads' moniker cluster); exactly one of the two.
    """

    application = models.ForeignKey("pipelines.Application", on_delete=models.CASCADE, related_name="traffic_guards")
    account = models.ForeignKey(DockerAccount, on_delete=models.CASCADE, related_name="traffic_guards", null=True,
                                blank=True)
    kubernetes_account = models.ForeignKey(KubernetesAccount, on_delete=models.CASCADE, related_name="traffic_guards",
                                           null=True, blank=True)
    location = models.CharField(max_length=253, blank=True, help_text="The namespace of a Kubernetes guard.")
    cluster = models.CharField(max_length=200)

    permission_path = "application"
    objects = RestrictedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(account__isnull=False, kubernetes_account__isnull=True, location="")
                           | (models.Q(account__isnull=True, kubernetes_account__isnull=False)
                              & ~models.Q(location=""))),
                name="traffic_guard_one_account"),
            models.UniqueConstraint(fields=["account", "cluster"], condition=models.Q(account__isnull=False),
                                    name="unique_traffic_guard"),
            models.UniqueConstraint(fields=["kubernetes_account", "location", "cluster"],
                                    condition=models.Q(kubernetes_account__isnull=False),
                                    name="unique_kubernetes_traffic_guard"),
        ]

    def __str__(self) -> str:
        where = f"{self.account_name}/{self.location}" if self.location else self.account_name
        return f"{where}/{self.cluster}"

    @property
    def account_name(self) -> str:
        return (self.account or self.kubernetes_account).name  # type: ignore[union-attr]
