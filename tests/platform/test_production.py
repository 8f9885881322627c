"""Production settings (README, "Running in production"): body size, API schema, HTTPS behind a proxy, static files."""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from rest_framework.test import APIClient

from cdplatform.webprocess import free_port, http_status, web_command

ROOT = Path(__file__).resolve().parent.parent.parent


# What a TLS-terminating proxy passes on for https://testserver/.
PROXIED = {"Host": "testserver", "Origin": "https://testserver", "X-Forwarded-Proto": "https"}


@pytest.fixture
def admin(db):
    return User.objects.create_superuser("root", password="a long enough password")


@pytest.mark.parametrize("path", ["/api/applications/", "/api/executions/", "/api/tokens/"])
def test_a_10_mb_body_is_refused_with_the_api_error_shape(admin, path):
    client = APIClient()
    client.force_authenticate(admin)

    response = client.post(path, data=b"x" * (10 * 1024 * 1024), content_type="application/json")

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    [error] = response.json()["errors"]
    assert error["pointer"] == "" and "DATA_UPLOAD_MAX_MEMORY_SIZE" in error["message"]


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_the_api_schema_and_docs_are_for_the_signed_in_by_default(admin, path):
    assert APIClient().get(path).status_code == 401
    client = APIClient()
    client.force_login(admin)
    assert client.get(path).status_code == 200


@override_settings(API_SCHEMA_PUBLIC=True)
def test_the_api_schema_may_be_made_public(db):
    assert Client().get("/api/schema/").status_code == 200


def _sign_in(client: Client, **headers) -> int:
    client.get("/login/", **headers)
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/login/",
        {"username": "root", "password": "a long enough password", "csrfmiddlewaretoken": token},
        **headers,
    )
    return response.status_code


def test_behind_a_tls_proxy_sign_in_fails_without_the_proxy_header_setting(admin):
    client = Client(enforce_csrf_checks=True)

    assert _sign_in(client, headers=PROXIED) == 403


def test_behind_a_tls_proxy_sign_in_succeeds_with_the_proxy_header_setting(admin, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client(enforce_csrf_checks=True)

    assert _sign_in(client, headers=PROXIED) == 302


@override_settings(CSRF_TRUSTED_ORIGINS=["https://cd.example.com"], ALLOWED_HOSTS=["cd.example.com", "testserver"])
def test_a_trusted_origin_may_sign_in(admin):
    client = Client(enforce_csrf_checks=True)

    assert _sign_in(client, headers={"Origin": "https://cd.example.com"}) == 302


@override_settings(SECURE_HSTS_SECONDS=31536000, SECURE_HSTS_INCLUDE_SUBDOMAINS=True, SECURE_HSTS_PRELOAD=True,
                   SECURE_SSL_REDIRECT=True, SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"))
def test_hsts_and_the_https_redirect(db):
    assert Client().get("/login/").status_code == 301
    response = Client().get("/login/", headers={"X-Forwarded-Proto": "https"})
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def _settings_of(**env: str) -> str:
    environment = {key: value for key, value in os.environ.items() if key not in ("DEBUG", "SECRET_KEY")} | env
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
            "s.SECURE_PROXY_SSL_HEADER, s.API_SCHEMA_PUBLIC)")
    environment["DJANGO_SETTINGS_MODULE"] = "cdplatform.settings"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment,
                            capture_output=True, text=True, timeout=120)
    return result.stdout.strip() or result.stderr


def test_production_is_the_default_and_needs_a_secret_key():
    assert "SECRET_KEY must be set when DEBUG is false" in _settings_of()
    assert _settings_of(SECRET_KEY="s" * 50) == (
        "False True True None False"
    )
    assert _settings_of(SECRET_KEY="s" * 50, SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto", API_SCHEMA_PUBLIC="true") == (
        "False True True ('HTTP_X_FORWARDED_PROTO', 'https') True"
    )
    assert "CSRF_TRUSTED_ORIGINS" in _settings_of(SECRET_KEY="s" * 50, CSRF_TRUSTED_ORIGINS="cd.example.com")


def test_static_files_are_served_without_debug(tmp_path):
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "s" * 50, "STATIC_ROOT": str(tmp_path / "static")}
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)
    port = free_port()
    process = subprocess.Popen(web_command("127.0.0.1", port), cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/static/js/live.js"
        deadline = time.monotonic() + 30
        while http_status(url) == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=5) as response:
            body = response.read()
        assert response.status == 200
        assert body == (ROOT / "static" / "js" / "live.js").read_bytes()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_yaml_alias_bomb_is_refused_before_anything_is_stored(admin):
    from apps.pipelines.models import Pipeline

    text = f"application: shop\nname: big\nblob: &blob {'x' * 1_000_000}\n"
    text += f"twenty: &twenty [{', '.join(['*blob'] * 20)}]\nstages: [{', '.join(['*twenty'] * 10)}]\n"
    client = APIClient()
    client.force_authenticate(admin)

    validated = client.post("/api/pipelines/validate/", data=text.encode(), content_type="application/yaml")
    saved = client.post("/api/pipelines/", data=text.encode(), content_type="application/yaml")

    assert validated.json()["valid"] is False
    assert "PIPELINE_DOCUMENT_MAX_BYTES" in validated.json()["errors"][0]["message"]
    assert saved.status_code == 400 and "PIPELINE_DOCUMENT_MAX_BYTES" in saved.json()["errors"][0]["message"]
    assert not Pipeline.objects.exists()
