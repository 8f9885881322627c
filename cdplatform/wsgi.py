"""WSGI entry point, for servers that do not speak ASGI (no live updates there)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdplatform.settings")
application = get_wsgi_application()

from cdplatform.startup import freeze_start_up_objects  # noqa: E402  (needs Django set up)

freeze_start_up_objects()
