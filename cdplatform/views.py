"""Project-wide error pages: API paths answer in the API's error shape, others with Django's pages."""

from django.http import JsonResponse
from django.views.defaults import page_not_found


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"errors": [{"pointer": "", "message": "Not found."}]}, status=404)
    return page_not_found(request, exception)
