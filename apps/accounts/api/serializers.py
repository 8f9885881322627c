"""Serializers of the accounts API: tokens, service accounts, application grants and audit events."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.utils import timezone
from rest_framework import serializers

from apps.accounts.models import ApiToken, AuditEvent, AuditSource, ServiceAccount

# --- Tokens -------------------------------------------------------------------------------------


class TokenSerializer(serializers.ModelSerializer):
    """A token as listed: never the token or its hash, only its prefix to tell tokens apart."""

    prefix = serializers.CharField(source="key_prefix", read_only=True, help_text="Tokens read cdp_<prefix>_...")
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    expiresAt = serializers.DateTimeField(source="expires_at", read_only=True, allow_null=True)
    lastUsedAt = serializers.DateTimeField(source="last_used_at", read_only=True, allow_null=True)
    revokedAt = serializers.DateTimeField(source="revoked_at", read_only=True, allow_null=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "createdAt", "expiresAt", "lastUsedAt", "revokedAt"]
        read_only_fields = fields


class NewTokenSerializer(TokenSerializer):
    """A token just issued, with the token itself: it is shown this once and never again."""

    token = serializers.SerializerMethodField(help_text="Send as 'Authorization: Bearer <token>'. Shown once.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
        read_only_fields = fields

    def get_token(self, obj) -> str:
        return self.context["token"]


class TokenCreateSerializer(serializers.Serializer):
    """A new token's name, unique among the owner's tokens, and when it expires (never, if not given)."""

    # context["owner"]: the user the token is for.

    name = serializers.CharField(max_length=100)
    expiresAt = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def validate_name(self, value: str) -> str:
        if ApiToken.objects.filter(user=self.context["owner"], name=value).exists():
            raise serializers.ValidationError("A token with this name exists already.")
        return value

    def validate_expiresAt(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.")
        return value


# --- Service accounts ---------------------------------------------------------------------------


class ServiceAccountSerializer(serializers.ModelSerializer):
    """A service account: the user name triggers and scripts act as, and the team (group) that owns it."""

    username = serializers.CharField(source="user.username", read_only=True)
    owner = serializers.CharField(source="owner.name", read_only=True, help_text="The owning group.")
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = ServiceAccount
        fields = ["username", "owner", "description", "createdAt"]
        read_only_fields = fields


class ServiceAccountCreateSerializer(serializers.Serializer):
    """A new service account: a free user name, and the group that will own it."""

    username = serializers.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    owner = serializers.CharField(max_length=150, help_text="Name of the group that owns the account.")
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

    def validate_username(self, value: str) -> str:
        if get_user_model().objects.filter(username=value).exists():
            raise serializers.ValidationError("This user name is taken.")
        return value

    def validate_owner(self, value: str) -> Group:
        group = Group.objects.filter(name=value).first()
        if group is None:
            raise serializers.ValidationError(f"No group named {value!r}.")
        return group


# --- Grants -------------------------------------------------------------------------


class BaseGrantSerializer(serializers.Serializer):
    """A grant: a user or a group (name exactly one), and an action; a governing app's subclass names the actions."""

    user = serializers.CharField(required=False, max_length=150)
    group = serializers.CharField(required=False, max_length=150)
    action = serializers.ChoiceField(choices=[])

    def validate(self, attrs: dict) -> dict:
        if ("user" in attrs) == ("group" in attrs):
            raise serializers.ValidationError("Name either a user or a group.")
        if "user" in attrs:
            grantee = get_user_model().objects.filter(username=attrs["user"]).first()
            if grantee is None:
                raise serializers.ValidationError({"user": [f"No user named {attrs['user']!r}."]})
        else:
            grantee = Group.objects.filter(name=attrs["group"]).first()
            if grantee is None:
                raise serializers.ValidationError({"group": [f"No group named {attrs['group']!r}."]})
        return {**attrs, "grantee": grantee}


class GranteeSerializer(serializers.Serializer):
    name = serializers.CharField()
    actions = serializers.ListField(child=serializers.CharField(), help_text="Of read, write and execute.")


# --- Audit events -------------------------------------------------------------------------------


class AuditEventSerializer(serializers.ModelSerializer):
    """One audit event: who did what, when, from where, to which object."""

    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    source = serializers.ChoiceField(choices=AuditSource.choices, read_only=True)
    ipAddress = serializers.IPAddressField(source="ip_address", read_only=True, allow_null=True)
    application = serializers.CharField(source="application_name", read_only=True, help_text="Empty for none.")
    objectType = serializers.CharField(source="object_type", read_only=True)
    objectId = serializers.CharField(source="object_id", read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id", "createdAt", "actor", "source", "ipAddress", "action", "application", "objectType", "objectId",
            "details",
        ]
        read_only_fields = fields
