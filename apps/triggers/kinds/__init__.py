"""The kinds of trigger, one module each; importing the package registers them all."""

from apps.triggers.kinds import cron, docker, git, jenkins, pipeline, webhook  # noqa: F401
