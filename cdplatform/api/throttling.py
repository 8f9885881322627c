"""API rate limits: per token (or signed-in user), and per client address for unauthenticated requests.

Counted in the ``throttle`` cache (Redis: every web process shares the
counts). A refused request is answered 429 with Retry-After, in the API's
error shape. With Redis unreachable, requests are let through unlimited
(and logged) rather than all refused.
"""

import logging

import redis
from django.conf import settings
from django.core.cache import caches
from rest_framework import exceptions
from rest_framework.throttling import SimpleRateThrottle

from apps.accounts.audit import client_ip
from apps.accounts.models import ApiToken

logger = logging.getLogger(__name__)


class RedisRateThrottle(SimpleRateThrottle):
    """SimpleRateThrottle on the ``throttle`` cache, with its rate read from settings on each request."""

    rate_setting = ""

    @property
    def cache(self):
        return caches["throttle"]

    def get_rate(self) -> str:
        return getattr(settings, self.rate_setting)

    def get_ident(self, request) -> str:
        return client_ip(request) or "unknown"

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except redis.exceptions.RedisError as error:
            logger.warning("rate limits not applied: Redis is unreachable (%s)", error)
            return True


class ClientRateThrottle(RedisRateThrottle):
    """API_RATE_LIMIT_CLIENT per API token, or per user for a signed-in session."""

    scope = "client"
    rate_setting = "API_RATE_LIMIT_CLIENT"

    def get_cache_key(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return None
        ident = f"token-{request.auth.pk}" if isinstance(request.auth, ApiToken) else f"user-{request.user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AnonymousRateThrottle(RedisRateThrottle):
    """API_RATE_LIMIT_ANONYMOUS per client address, for requests that are not authenticated."""

    scope = "anonymous"
    rate_setting = "API_RATE_LIMIT_ANONYMOUS"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def throttle_unauthenticated(request, view) -> exceptions.Throttled | None:
    """Count a request refused for want of (valid) credentials against its address; Throttled once over the limit.

    DRF checks permissions before throttles, so without this a client could
    send unauthenticated requests, or guess tokens, at any rate.
    """
    throttle = AnonymousRateThrottle()
    if throttle.allow_request(request, view):
        return None
    return exceptions.Throttled(throttle.wait())
