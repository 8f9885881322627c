"""The tests run the platform in development mode, as ``bin/run`` does (a pytest plugin: ``-p`` in pyproject.toml).

The settings default to production, which needs a SECRET_KEY. Loaded with
``-p`` before pytest-django reads the settings, this sets ``DEBUG=true`` in
the environment unless it is already set, for the settings of this process
and of every worker or web process a test starts.
"""

import os

os.environ.setdefault("DEBUG", "true")
