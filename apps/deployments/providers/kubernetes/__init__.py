"""The Kubernetes provider: clusters reached through an account's kubeconfig (or the worker pod's service account).

``client.py`` turns an account row into a configured ``kubernetes.client.ApiClient`` and decides which
namespaces and kinds the account may touch; ``kubeconfig.py`` reads and checks kubeconfig documents, for the
account services (on save) and for the client (on use); ``resources.py`` finds a kind's API resource through
the dynamic client.
"""
