"""Brute force is refused: sign-in locks after repeated failures (audited, unlockable), and the API is rate-limited."""

import time

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.models import AuditEvent
from apps.accounts.services import do_create_token
from cdplatform import settings as shipped
from cdplatform.env import env_rate

pytestmark = pytest.mark.django_db
PASSWORD = "right-horse-battery-7"


@pytest.fixture
def alice():
    return User.objects.create_user("alice", password=PASSWORD)


def sign_in(password: str, username: str = "alice", address: str = "10.0.0.1", path: str = "/login/"):
    return Client(REMOTE_ADDR=address).post(path, {"username": username, "password": password})


def test_thirty_wrong_passwords_lock_the_account_even_against_the_right_one(alice, settings):
    settings.LOGIN_FAILURE_LIMIT = settings.AXES_FAILURE_LIMIT = 5
    answers = [sign_in(f"guess-{n}").status_code for n in range(30)]
    assert answers[:4] == [200] * 4  # the form again, "enter a correct username and password"
    assert set(answers[4:]) == {429}  # the fifth failure locks

    right = sign_in(PASSWORD)
    assert right.status_code == 429 and "_auth_user_id" not in right.client.session
    assert int(right["Retry-After"]) == settings.LOGIN_LOCKOUT_SECONDS
    assert "Too many failed sign-in attempts" in right.content.decode()
    # From another address too: the user name is locked, not just the address.
    assert sign_in(PASSWORD, address="10.0.0.2").status_code == 429

    events = list(AuditEvent.objects.filter(action__startswith="login.").order_by("id"))
    assert [event.action for event in events] == ["login.failed"] * 5 + ["login.locked_out"]
    assert {(event.actor, event.ip_address, event.source) for event in events} == {("alice", "10.0.0.1", "web")}


def test_one_address_trying_many_user_names_is_locked_out(alice):
    for n in range(5):
        sign_in("wrong", username=f"user{n}", address="10.0.0.9")
    assert sign_in(PASSWORD, address="10.0.0.9").status_code == 429
    assert sign_in(PASSWORD, address="10.0.0.10").status_code == 302  # alice herself, elsewhere


def test_the_lockout_ends_after_the_cool_off(alice, settings):
    # Long enough that five slow password checks on a busy machine all fall inside it.
    settings.AXES_COOLOFF_TIME = __import__("datetime").timedelta(seconds=4)
    for _ in range(5):
        sign_in("wrong")
    assert sign_in(PASSWORD).status_code == 429
    time.sleep(4.2)
    assert sign_in(PASSWORD).status_code == 302


def test_the_admin_sign_in_is_locked_too(alice):
    for _ in range(5):
        sign_in("wrong", path="/admin/login/")
    assert sign_in(PASSWORD, path="/admin/login/").status_code == 429
    assert AuditEvent.objects.filter(action="login.locked_out", source="admin").count() == 1


def test_an_administrator_unlocks_and_it_is_audited(alice):
    for _ in range(5):
        sign_in("wrong")
    admin = Client()
    admin.force_login(User.objects.create_superuser("root"))
    from axes.models import AccessAttempt

    response = admin.post("/admin/axes/accessattempt/", {
        "action": "unlock", "_selected_action": list(AccessAttempt.objects.values_list("pk", flat=True)),
    })
    assert response.status_code == 302
    assert sign_in(PASSWORD).status_code == 302
    unlocked = AuditEvent.objects.get(action="login.unlocked")
    assert (unlocked.actor, unlocked.object_id, unlocked.details["failures"]) == ("root", "alice", 5)


def test_a_success_before_the_limit_forgets_the_failures(alice):
    for _ in range(4):
        sign_in("wrong")
    assert sign_in(PASSWORD).status_code == 302
    for _ in range(4):
        sign_in("wrong")
    assert sign_in(PASSWORD).status_code == 302


# --- API rate limits ---------------------------------------------------------------------------


def test_a_token_sending_300_requests_is_refused_past_its_rate(alice, settings):
    settings.API_RATE_LIMIT_CLIENT = shipped.API_RATE_LIMIT_CLIENT  # as configured: 120/minute by default
    _, token = do_create_token(alice, "script")
    client = APIClient(REMOTE_ADDR="10.0.0.1")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    answers = [client.get("/api/applications/") for _ in range(300)]
    allowed = int(shipped.API_RATE_LIMIT_CLIENT.split("/")[0])
    assert [a.status_code for a in answers[:allowed]] == [200] * allowed
    refused = answers[allowed:]
    assert len(refused) > 0
    assert {a.status_code for a in refused} == {429}
    assert 0 < int(refused[0]["Retry-After"]) <= 60
    assert refused[0].json()["errors"][0]["pointer"] == ""
    assert "throttled" in refused[0].json()["errors"][0]["message"]
    # Another token of the same user has a count of its own.
    _, other = do_create_token(alice, "other")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {other}")
    assert client.get("/api/applications/").status_code == 200


def test_unauthenticated_requests_and_token_guesses_are_limited_per_address(settings):
    settings.API_RATE_LIMIT_ANONYMOUS = "10/minute"
    guesser = APIClient(REMOTE_ADDR="10.0.0.7")
    guesser.credentials(HTTP_AUTHORIZATION="Bearer cdp_0000_guess")
    answers = [guesser.get("/api/applications/").status_code for _ in range(15)]
    assert answers == [401] * 10 + [429] * 5
    assert APIClient(REMOTE_ADDR="10.0.0.7").get("/api/applications/").status_code == 429  # no token either
    assert APIClient(REMOTE_ADDR="10.0.0.8").get("/api/applications/").status_code == 401  # another address


def test_a_spoofed_forwarded_header_does_not_escape_the_limit(settings):
    settings.API_RATE_LIMIT_ANONYMOUS = "3/minute"
    answers = [APIClient(REMOTE_ADDR="10.0.0.7", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").get("/api/applications/")
               for n in range(5)]
    assert [a.status_code for a in answers] == [401, 401, 401, 429, 429]


def test_counts_are_shared_through_redis(alice, settings, clean_redis, redis_url):
    """The production cache: what one web process counted, another sees."""
    settings.API_RATE_LIMIT_CLIENT = "5/minute"
    settings.CACHES = {**settings.CACHES, "throttle": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url, "KEY_PREFIX": "t"}}
    client = APIClient()
    client.force_authenticate(alice)
    assert [client.get("/api/applications/").status_code for _ in range(6)] == [200] * 5 + [429]
    assert any(b"throttle_client_user-" in key for key in clean_redis.keys("*"))


def test_a_rate_that_is_not_one_stops_start(monkeypatch):
    monkeypatch.setenv("API_RATE_LIMIT_CLIENT", "lots")
    with pytest.raises(ImproperlyConfigured, match="API_RATE_LIMIT_CLIENT"):
        env_rate("API_RATE_LIMIT_CLIENT", "600/minute")
    monkeypatch.setenv("API_RATE_LIMIT_CLIENT", "0/minute")
    with pytest.raises(ImproperlyConfigured, match="API_RATE_LIMIT_CLIENT"):
        env_rate("API_RATE_LIMIT_CLIENT", "600/minute")
    monkeypatch.setenv("API_RATE_LIMIT_CLIENT", "20/second")
    assert env_rate("API_RATE_LIMIT_CLIENT", "600/minute") == "20/second"


def test_staff_without_the_permission_cannot_see_or_unlock_attempts(alice):
    from axes.models import AccessAttempt

    for _ in range(5):
        sign_in("wrong")
    staff = Client()
    staff.force_login(User.objects.create_user("eve", is_staff=True))
    pks = list(AccessAttempt.objects.values_list("pk", flat=True))
    assert staff.get("/admin/axes/accessattempt/").status_code == 403
    assert staff.post("/admin/axes/accessattempt/", {"action": "unlock", "_selected_action": pks}).status_code == 403
    assert staff.post(f"/admin/axes/accessattempt/{pks[0]}/delete/", {"post": "yes"}).status_code == 403
    assert sign_in(PASSWORD).status_code == 429
    assert not AuditEvent.objects.filter(action="login.unlocked").exists()
