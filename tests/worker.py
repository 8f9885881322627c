"""A real engine worker that first imports test modules, which register periodic jobs or event consumers.

``python -m tests.worker MODULE[,MODULE...]`` runs exactly what
``manage.py rqworker --with-scheduler`` runs, once the modules are imported:
the registries are filled from code (an app's ``ready()``), so a test's own
jobs reach a worker process this way.
"""

import importlib
import os
import sys

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdplatform.settings")
    django.setup()
    for name in sys.argv[1].split(","):
        importlib.import_module(name)
    from django.core.management import call_command

    call_command("rqworker", "--with-scheduler")


if __name__ == "__main__":
    main()
