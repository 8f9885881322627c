"""Routes of the accounts API, registered on the shared router."""

from cdplatform.api.urls import router  # noqa: F401
