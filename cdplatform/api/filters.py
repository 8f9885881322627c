"""The API's list filters: django-filter's backend, with times turned to UTC before they reach the database."""

from datetime import UTC, datetime

from django_filters import utils
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import exceptions


class FilterBackend(DjangoFilterBackend):
    """``DjangoFilterBackend``, except that a time filter's value is sent to the database in UTC.

    ISO 8601 allows, and Python keeps, any UTC offset under 24 hours, but
    PostgreSQL refuses offsets past ±15:59 ("time zone displacement out of
    range"), which would make ``?created_after=2024-05-01T00:00:00+20:00``
    a server error. In UTC the same moment is fine; a moment that falls
    outside the years 1 to 9999 once in UTC is a 400 naming the parameter.
    """

    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid() and self.raise_exception:
            raise utils.translate_validation(filterset.errors)
        cleaned, errors = filterset.form.cleaned_data, {}
        for name, value in cleaned.items():
            if isinstance(value, datetime) and value.utcoffset() is not None:
                try:
                    cleaned[name] = value.astimezone(UTC)
                except OverflowError:
                    errors[name] = ["is out of range: it falls outside the years 1 to 9999 in UTC"]
        if errors:
            raise exceptions.ValidationError(errors)
        return filterset.qs
