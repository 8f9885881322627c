"""A web process puts what start-up made out of the garbage collector's reach before its first request."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import gc, sys
import {module}
views = [name for name in sys.modules if name.startswith("apps.") and name.endswith(".views")]
print(gc.get_freeze_count(), len(views))
"""


def test_the_asgi_and_wsgi_applications_load_their_views_and_freeze_start_up_objects():
    for module in ("cdplatform.asgi", "cdplatform.wsgi"):
        result = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], cwd=ROOT, capture_output=True,
                                text=True, timeout=60, env={**os.environ, "DEBUG": "true"})
        assert result.returncode == 0, result.stderr[-2000:]
        frozen, views = map(int, result.stdout.split())
        assert views >= 3, f"{module} left the URL configuration's views for the first request"
        assert frozen > 50_000, f"{module} froze only {frozen} objects"
