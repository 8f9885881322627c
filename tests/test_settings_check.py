"""Every setting is checked at start: a bad value stops the process with the variable's name."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def manage_check(**env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("EXECUTION_WINDOW_TIME_ZONE", "Mars/Olympus_Mons", "is not a known time zone"),
        ("ENGINE_MAX_STEP_ATTEMPTS", "0", "must be at least 1"),
        ("LOG_LEVEL", "LOUD", "is not one of DEBUG, INFO"),
        ("REDIS_URL", "http://127.0.0.1:6379/0", "must start with one of redis://"),
        ("SECRETS_ENCRYPTION_KEYS", "not-a-fernet-key", "(key 1, not shown) is not a Fernet key"),
        ("SLACK_API_URL", "slack.com/api", "must start with one of http://, https://"),
        ("SLACK_BOT_TOKEN", "hunter2", "(not shown) is not a Slack token"),
        ("PUBLIC_URL", "cd.example.com", "must start with one of http://, https://"),
        ("EMAIL_PORT", "smtp", "is not an integer"),
        ("EMAIL_USE_TLS", "maybe", "is not a boolean"),
        ("DEFAULT_FROM_EMAIL", "cdp", "is not an e-mail address"),
        ("NOTIFICATION_MAX_ATTEMPTS", "0", "must be at least 1"),
    ],
)
def test_a_bad_setting_stops_start_naming_the_variable(name, value, message):
    result = manage_check(**{name: value})

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"django.core.exceptions.ImproperlyConfigured: {name}=")
    assert message in last_line


def test_good_settings_start():
    result = manage_check(EXECUTION_WINDOW_TIME_ZONE="Europe/Paris", ENGINE_MAX_STEP_ATTEMPTS="5", LOG_LEVEL="warning")

    assert result.returncode == 0, result.stderr


def test_half_a_slack_configuration_is_said_at_start():
    result = manage_check(SLACK_BOT_TOKEN="xoxb-1-2-3", SLACK_SIGNING_SECRET="")

    assert result.returncode == 0
    assert "notifications.W001" in result.stderr and "SLACK_SIGNING_SECRET is not set" in result.stderr
