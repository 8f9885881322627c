"""API authentication by personal or service-account token: ``Authorization: Bearer cdp_...``."""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from apps.accounts.models import TOKEN_PREFIX, ApiToken

# Recording the last use on every request would turn reads into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """Looks the token up by its hash; refuses expired, revoked or inactive users' tokens."""

    keywords = ("Bearer", "Token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace").split()
        if not header or header[0] not in self.keywords:
            return None
        if len(header) != 2 or not header[1].startswith(f"{TOKEN_PREFIX}_"):
            raise exceptions.AuthenticationFailed("Malformed token: expected 'Bearer cdp_...'.")
        token = ApiToken.objects.select_related("user").filter(key_hash=ApiToken.hash(header[1])).first()
        if token is None or not token.is_usable or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Tells the API schema how token authentication works (a bearer token)."""

    target_class = "apps.accounts.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A personal or service-account token: cdp_..."}
