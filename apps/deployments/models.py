"""Deployment accounts (Docker engines, registries) and their grant tables; server groups and load balancers."""

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
