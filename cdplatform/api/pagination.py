"""Cursor pagination for every list: stable under inserts, constant cost at any depth."""

from rest_framework.pagination import CursorPagination


class NewestFirstPagination(CursorPagination):
    """Pages of ``page_size`` (default 50, at most 500), newest first unless the view orders otherwise."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "-created_at"
