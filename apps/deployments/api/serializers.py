"""Serializers of the deployments API: accounts as anyone who reads them sees them (never their credentials)."""

from rest_framework import serializers

from apps.accounts.api.serializers import BaseGrantSerializer, GranteeSerializer
from apps.deployments.governance import ACCOUNT_ACTIONS, ARTIFACT_ACCOUNT_ACTIONS
from apps.deployments.models import ArtifactAccount, ArtifactType, DockerAccount, KubernetesAccount, RegistryAccount


class RegistryAccountSerializer(serializers.ModelSerializer):
    """A registry account: its address and whether it holds credentials; the password is write-only."""

    hasCredentials = serializers.BooleanField(source="has_credentials", read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)

    class Meta:
        model = RegistryAccount
        fields = ["name", "address", "insecure", "username", "hasCredentials", "createdAt", "updatedAt"]
        read_only_fields = fields


class RegistryAccountWriteSerializer(serializers.Serializer):
    """A registry account to create or change: keys left out keep their value; ``password`` is never answered."""

    name = serializers.CharField(required=False)
    address = serializers.CharField(required=False, help_text="host[:port], e.g. 127.0.0.1:5000")
    insecure = serializers.BooleanField(required=False)
    username = serializers.CharField(required=False, allow_blank=True)
    password = serializers.CharField(required=False, allow_blank=True, write_only=True,
                                     help_text="Write-only; an empty string clears it.")


class DockerAccountSerializer(serializers.ModelSerializer):
    """A Docker engine account: where it connects (blank: DOCKER_HOST or the default socket), its registries."""

    cloudProvider = serializers.SerializerMethodField()
    tlsVerify = serializers.BooleanField(source="tls_verify", read_only=True)
    caCert = serializers.CharField(source="ca_cert", read_only=True)
    clientCert = serializers.CharField(source="client_cert", read_only=True)
    hasClientKey = serializers.BooleanField(source="has_client_key", read_only=True)
    registries = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)

    class Meta:
        model = DockerAccount
        fields = ["name", "cloudProvider", "host", "tls", "tlsVerify", "caCert", "clientCert", "hasClientKey",
                  "registries", "createdAt", "updatedAt"]
        read_only_fields = fields

    def get_cloudProvider(self, obj) -> str:
        return "docker"


class DockerAccountWriteSerializer(serializers.Serializer):
    """A Docker engine account to create or change: keys left out keep their value; ``clientKey`` is write-only."""

    name = serializers.CharField(required=False)
    host = serializers.CharField(required=False, allow_blank=True)
    tls = serializers.BooleanField(required=False)
    tlsVerify = serializers.BooleanField(required=False)
    caCert = serializers.CharField(required=False, allow_blank=True)
    clientCert = serializers.CharField(required=False, allow_blank=True)
    clientKey = serializers.CharField(required=False, allow_blank=True, write_only=True)
    registries = serializers.ListField(child=serializers.CharField(), required=False)


class KubernetesAccountSerializer(serializers.ModelSerializer):
    """A Kubernetes account, in Clouddriver's names: where its credentials come from (never the kubeconfig's
    contents: ``hasKubeconfig`` says whether it holds some) and which namespaces and kinds it may touch."""

    cloudProvider = serializers.SerializerMethodField()
    hasKubeconfig = serializers.BooleanField(source="has_kubeconfig", read_only=True)
    kubeconfigFile = serializers.CharField(source="kubeconfig_file", read_only=True)
    serviceAccount = serializers.BooleanField(source="in_cluster", read_only=True)
    namespaces = serializers.ListField(child=serializers.CharField(), read_only=True)
    omitNamespaces = serializers.ListField(source="omit_namespaces", child=serializers.CharField(), read_only=True)
    kinds = serializers.ListField(child=serializers.CharField(), read_only=True)
    omitKinds = serializers.ListField(source="omit_kinds", child=serializers.CharField(), read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)

    class Meta:
        model = KubernetesAccount
        fields = ["name", "cloudProvider", "hasKubeconfig", "kubeconfigFile", "context", "serviceAccount",
                  "namespaces", "omitNamespaces", "kinds", "omitKinds", "createdAt", "updatedAt"]
        read_only_fields = fields

    def get_cloudProvider(self, obj) -> str:
        return "kubernetes"


class KubernetesAccountWriteSerializer(serializers.Serializer):
    """A Kubernetes account to create or change: keys left out keep their value; one of ``kubeconfigContents``
    (write-only), ``kubeconfigFile`` or ``serviceAccount: true`` names its credentials."""

    name = serializers.CharField(required=False)
    kubeconfigContents = serializers.CharField(required=False, allow_blank=True, write_only=True, trim_whitespace=False,
                                               help_text="Write-only: the text of a kubeconfig (at most 256 KB).")
    kubeconfigFile = serializers.CharField(required=False, allow_blank=True,
                                           help_text="Absolute path of a kubeconfig file on the worker.")
    context = serializers.CharField(required=False, allow_blank=True)
    serviceAccount = serializers.BooleanField(required=False,
                                              help_text="The service account of the pod the worker runs in.")
    namespaces = serializers.ListField(child=serializers.CharField(), required=False)
    omitNamespaces = serializers.ListField(child=serializers.CharField(), required=False)
    kinds = serializers.ListField(child=serializers.CharField(), required=False)
    omitKinds = serializers.ListField(child=serializers.CharField(), required=False)


class ArtifactAccountSerializer(serializers.ModelSerializer):
    """An artifact account, in Clouddriver's names: the type of artifacts it reads and where its credentials
    come from (never the password or token: ``hasPassword`` and ``hasToken`` say whether it holds them)."""

    hasPassword = serializers.BooleanField(source="has_password", read_only=True)
    hasToken = serializers.BooleanField(source="has_token", read_only=True)
    tokenFile = serializers.CharField(source="token_file", read_only=True)
    usernamePasswordFile = serializers.CharField(source="username_password_file", read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)

    class Meta:
        model = ArtifactAccount
        fields = ["name", "type", "username", "hasPassword", "hasToken", "tokenFile", "usernamePasswordFile",
                  "createdAt", "updatedAt"]
        read_only_fields = fields


class ArtifactAccountWriteSerializer(serializers.Serializer):
    """An artifact account to create or change: keys left out keep their value, an empty string clears one;
    ``password`` and ``token`` are write-only."""

    name = serializers.CharField(required=False)
    type = serializers.ChoiceField(choices=ArtifactType.values, required=False,
                                   help_text="The type of artifacts it reads; it does not change.")
    username = serializers.CharField(required=False, allow_blank=True)
    password = serializers.CharField(required=False, allow_blank=True, write_only=True, trim_whitespace=False,
                                     help_text="Write-only.")
    usernamePasswordFile = serializers.CharField(required=False, allow_blank=True,
                                                 help_text="Absolute path of a file on the worker holding "
                                                           "username:password (administrators).")
    token = serializers.CharField(required=False, allow_blank=True, write_only=True, trim_whitespace=False,
                                  help_text="Write-only.")
    tokenFile = serializers.CharField(required=False, allow_blank=True,
                                      help_text="Absolute path of a file on the worker holding the token "
                                                "(administrators).")


class ArtifactAccountGrantSerializer(BaseGrantSerializer):
    """A grant on an artifact account: a user or a group (name exactly one), and the action: read, use or
    manage."""

    action = serializers.ChoiceField(choices=list(ARTIFACT_ACCOUNT_ACTIONS))


class AccountGrantSerializer(BaseGrantSerializer):
    """A grant on an account: a user or a group (name exactly one), and the action: read, deploy or manage."""

    action = serializers.ChoiceField(choices=list(ACCOUNT_ACTIONS))


class AccountGrantsSerializer(serializers.Serializer):
    """Who may do what with an account: users and groups, each with their actions."""

    account = serializers.CharField()
    users = GranteeSerializer(many=True)
    groups = GranteeSerializer(many=True)


class InstanceSerializer(serializers.Serializer):
    """One container of a server group, with its health (UP, DOWN, STARTING, OUT_OF_SERVICE)."""

    name = serializers.CharField()
    containerId = serializers.CharField(source="container_id")
    health = serializers.CharField()
    hostPort = serializers.IntegerField(source="host_port", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")


class ServerGroupSerializer(serializers.Serializer):
    """A live server group: version, image, size, whether it takes traffic, its instances."""

    name = serializers.CharField()
    account = serializers.CharField(source="account.name")
    version = serializers.IntegerField()
    image = serializers.CharField()
    desired = serializers.IntegerField()
    enabled = serializers.BooleanField()
    loadBalancers = serializers.ListField(source="load_balancers", child=serializers.CharField())
    createdAt = serializers.DateTimeField(source="created_at")
    instances = InstanceSerializer(source="live_instances", many=True)


class ClusterSerializer(serializers.Serializer):
    """A cluster of an application and its live server groups, newest first."""

    name = serializers.CharField()
    account = serializers.CharField()
    serverGroups = ServerGroupSerializer(many=True)


class LoadBalancerSerializer(serializers.Serializer):
    """A load balancer and where it sends traffic now."""

    name = serializers.CharField()
    account = serializers.CharField(source="account.name")
    listeners = serializers.ListField(child=serializers.DictField())
    targets = serializers.ListField(child=serializers.CharField())


class PodSerializer(serializers.Serializer):
    """A pod of a Kubernetes server group, with its health in the Docker instances' terms."""

    name = serializers.CharField()
    health = serializers.CharField()
    phase = serializers.CharField()
    reason = serializers.CharField()
    restarts = serializers.IntegerField()
    createdAt = serializers.CharField(source="created_at")


class KubernetesServerGroupSerializer(serializers.Serializer):
    """A ReplicaSet (under its Deployment), StatefulSet or DaemonSet, as a server group. ``enabled`` is null for
    one deployed without traffic management."""

    name = serializers.CharField()
    manifestName = serializers.CharField(source="manifest_name")
    kind = serializers.CharField()
    account = serializers.CharField()
    namespace = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    images = serializers.ListField(child=serializers.CharField())
    desired = serializers.IntegerField()
    ready = serializers.IntegerField()
    enabled = serializers.BooleanField(allow_null=True)
    loadBalancers = serializers.ListField(source="load_balancers", child=serializers.CharField())
    createdAt = serializers.CharField(source="created_at")
    manager = serializers.CharField()
    stable = serializers.BooleanField()
    status = serializers.CharField()
    instances = PodSerializer(source="pods", many=True)


class DeploymentManagerSerializer(serializers.Serializer):
    """A Deployment: the server group manager a rollout is undone on."""

    name = serializers.CharField()
    manifestName = serializers.CharField(source="manifest_name")
    revision = serializers.IntegerField()
    stable = serializers.BooleanField()
    status = serializers.CharField()


class KubernetesClusterSerializer(serializers.Serializer):
    """A Spinnaker cluster (moniker) of an application in one namespace: server groups newest first."""

    name = serializers.CharField()
    account = serializers.CharField()
    namespace = serializers.CharField()
    serverGroups = KubernetesServerGroupSerializer(source="server_groups", many=True)
    managers = DeploymentManagerSerializer(many=True)


class ServicePortSerializer(serializers.Serializer):
    """A port of a Service, as the cluster reports it (``nodePort`` for a NodePort or LoadBalancer Service)."""

    name = serializers.CharField()
    protocol = serializers.CharField()
    port = serializers.IntegerField()
    targetPort = serializers.CharField()
    nodePort = serializers.IntegerField(allow_null=True)


class IngressRuleSerializer(serializers.Serializer):
    """One path of an Ingress (``host`` and ``path`` empty for its default backend) and where it sends."""

    host = serializers.CharField()
    path = serializers.CharField()
    service = serializers.CharField()
    port = serializers.CharField()


class KubernetesLoadBalancerSerializer(serializers.Serializer):
    """A Service or an Ingress of the application and the server groups it routes to now (manifest names, newest
    first). A Service routes to those whose pod template carries every label of its ``selector``; an Ingress to
    those of the ``services`` its ``rules`` name. ``clusterIp`` of an Ingress: the addresses it reports."""

    name = serializers.CharField()
    kind = serializers.CharField(help_text="Service or Ingress")
    manifestName = serializers.CharField(source="manifest_name")
    account = serializers.CharField()
    namespace = serializers.CharField()
    type = serializers.CharField()
    clusterIp = serializers.CharField(source="cluster_ip")
    ports = ServicePortSerializer(many=True)
    selector = serializers.DictField(child=serializers.CharField())
    rules = IngressRuleSerializer(many=True)
    services = serializers.ListField(child=serializers.CharField())
    createdAt = serializers.CharField(source="created_at")
    serverGroups = serializers.ListField(source="server_groups", child=serializers.CharField())


class UnavailableNamespaceSerializer(serializers.Serializer):
    """A namespace the application was deployed to whose cluster did not answer."""

    account = serializers.CharField()
    namespace = serializers.CharField()
    error = serializers.CharField()


class ApplicationClustersSerializer(serializers.Serializer):
    """What an application runs: its clusters and its load balancers (Deck's clusters tab), and its Kubernetes
    clusters and load balancers (Services) read live from the namespaces it was deployed to."""

    application = serializers.CharField()
    clusters = ClusterSerializer(many=True)
    loadBalancers = LoadBalancerSerializer(many=True)
    kubernetesClusters = KubernetesClusterSerializer(many=True)
    kubernetesLoadBalancers = KubernetesLoadBalancerSerializer(many=True)
    unavailable = UnavailableNamespaceSerializer(many=True)


class CapacitySerializer(serializers.Serializer):
    desired = serializers.IntegerField(min_value=0, max_value=100)


class ServerGroupActionSerializer(serializers.Serializer):
    """A server group action's body: ``capacity.desired`` for a resize, nothing for the others."""

    capacity = CapacitySerializer(required=False)


class ServerGroupActionResultSerializer(serializers.Serializer):
    """What a server group action did."""

    action = serializers.CharField()
    serverGroup = serializers.CharField()
    details = serializers.DictField()


class ManifestActionSerializer(serializers.Serializer):
    """A Kubernetes server group action's body: ``replicas`` for a scale, ``revisionsBack`` for an undo."""

    replicas = serializers.IntegerField(min_value=0, max_value=1000, required=False)
    revisionsBack = serializers.IntegerField(min_value=1, max_value=100, required=False, default=1)


class ManifestActionResultSerializer(serializers.Serializer):
    """What a Kubernetes server group action did."""

    action = serializers.CharField()
    manifest = serializers.CharField()
    details = serializers.DictField()
