"""The Kubernetes provider: clusters reached through an account's kubeconfig (or the worker pod's service account).

``client.py`` turns an account row into a configured ``kubernetes.client.ApiClient`` and decides which
namespaces and kinds the account may touch; ``kubeconfig.py`` reads and checks kubeconfig documents, for the
account services (on save) and for the client (on use); ``resources.py`` finds a kind's API resource through
the dynamic client. ``manifests.py`` prepares and applies manifests (Spinnaker's versioning, annotations and
artifact binding), ``stability.py`` says when an applied manifest is stable (or why it is not), ``traffic.py``
moves a versioned ReplicaSet's pods into and out of Services; ``operations.py`` and ``jobs.py`` are the other
manifest stages' work (delete, patch, scale, undo, restart, run a Job).
"""

from apps.deployments.providers.registry import register_provider

PROVIDER = "kubernetes"

register_provider(PROVIDER, "Kubernetes clusters")
