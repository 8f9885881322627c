"""The continuous-delivery platform's Django project: settings, URLs, ASGI/WSGI entry points."""
