"""The API docs (Swagger UI at /api/docs/, Redoc at /api/redoc/) load every file from the platform itself."""

import re

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.test import Client

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


@pytest.fixture
def signed_in(db):
    client = Client()
    client.force_login(User.objects.create_user("alice", password="a long enough password"))
    return client


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_api_docs_need_no_other_site(signed_in, path):
    html = signed_in.get(path).content.decode()

    assets = [url for url in ASSET.findall(html) if url.endswith((".js", ".css", ".png"))]
    assert assets, html[:500]
    for url in assets:
        assert url.startswith("/static/"), f"{path} loads {url} from elsewhere"
        assert finders.find(url.removeprefix("/static/")), f"{path} names {url}, which no app ships"
    assert "cdn" not in html.lower()
