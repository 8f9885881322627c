"""Live updates over WebSockets: readers subscribe, everyone else is refused, and revoking access drops the socket.

The sockets talk to the real ASGI application (origin check, session
authentication, routing) through Channels' WebsocketCommunicator, and the
channel layer is the pub/sub layer on the test Redis. pytest-asyncio is not
used: each test's socket conversation is an async function that the sync test
runs with ``async_to_sync``, so the consumers' database calls run in the test's
own thread, on the test database.

bob reads the shop application; charlie is an outsider (he reads only blog);
dave reads shop only as a member of the shop team.
"""

import asyncio
import copy

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import remove_perm

from apps.accounts.events import publish_permissions_changed
from apps.accounts.models import AuditEvent
from apps.accounts.services import do_grant, do_revoke
from apps.pipelines import consumers
from apps.pipelines.events import ExecutionChange, add_publishes, next_sequences
from apps.pipelines.live_access import SharedAnswers
from apps.pipelines.services import do_save_pipeline, do_start_execution
from cdplatform.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://localhost")
UNKNOWN_EXECUTION = "00000000-0000-4000-8000-000000000000"
WAIT = [{"refId": "1", "name": "Wait", "type": "wait", "waitTime": 0}]
# Sockets one user opens on one execution, as many tabs and dashboards do.
MANY = 20


@pytest.fixture(autouse=True)
def answers(monkeypatch):
    """The web process's shared permission answers, empty for each test (ids come back from test to test)."""
    fresh = SharedAnswers(lambda user_id, application_id: consumers.may_still_read(user_id, application_id))
    monkeypatch.setattr(consumers, "ANSWERS", fresh)
    return fresh


@pytest.fixture
def live(settings, clean_redis, redis_url):
    """The channel layer on the test Redis; assigning the setting also drops Channels' cached layer."""
    layers = copy.deepcopy(django_settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"] = [redis_url]
    settings.CHANNEL_LAYERS = layers
    return clean_redis


@pytest.fixture
def shop(live):
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "deliver", "stages": WAIT})
    return pipeline


@pytest.fixture
def people(shop):
    blog, _ = do_save_pipeline({"application": "blog", "name": "publish", "stages": WAIT})
    users = {name: User.objects.create_user(name) for name in ("bob", "charlie")}
    do_grant(shop.application, users["bob"], "read", actor="setup")
    do_grant(blog.application, users["charlie"], "read", actor="setup")
    return users


@pytest.fixture
def execution(shop):
    """An execution of shop/deliver that stays NOT_STARTED: no worker runs unless a test starts one."""
    return do_start_execution(shop)


def headers_for(user=None) -> list[tuple[bytes, bytes]]:
    """Handshake headers of a browser on our own origin, logged in as ``user`` (through a real session)."""
    if user is None:
        return [ORIGIN]
    client = Client()
    client.force_login(user)
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"
    return [ORIGIN, (b"cookie", cookie.encode())]


def publish(redis_client, execution, status: str) -> int:
    """Publish a change of ``execution`` as the engine does after a commit; return its sequence number."""
    execution_id = str(execution.id)
    change = ExecutionChange(execution_id, execution.application.name, status)
    sequences = next_sequences(redis_client, [execution_id])
    with redis_client.pipeline(transaction=False) as pipe:
        add_publishes(pipe, [change], sequences)
        pipe.execute()
    return sequences[execution_id]


async def close_code(socket: WebsocketCommunicator, timeout: float = 5) -> int:
    """The code the server closes an accepted socket with (it fails the test if a message comes instead)."""
    output = await socket.receive_output(timeout)
    assert output["type"] == "websocket.close", output
    return output["code"]


def refusal(path: str, user=None) -> int:
    """Open a socket to ``path`` and return the code it is closed with."""
    headers = headers_for(user)

    async def conversation():
        socket = WebsocketCommunicator(application, path, headers=headers)
        assert await socket.connect() == (True, None)
        try:
            return await close_code(socket)
        finally:
            await socket.disconnect()

    return async_to_sync(conversation)()


def test_a_reader_receives_each_change_of_an_execution(people, execution, live):
    headers = headers_for(people["bob"])
    path = f"/ws/executions/{execution.id}/"

    async def conversation():
        socket = WebsocketCommunicator(application, path, headers=headers)
        assert await socket.connect() == (True, None)
        assert await socket.receive_json_from() == {"type": "hello", "sequence": None}
        sequence = await sync_to_async(publish)(live, execution, "RUNNING")
        event = await socket.receive_json_from(timeout=5)
        await socket.disconnect()

        again = WebsocketCommunicator(application, path, headers=headers)
        assert await again.connect() == (True, None)
        hello = await again.receive_json_from()
        await again.disconnect()
        return sequence, event, hello

    sequence, event, hello = async_to_sync(conversation)()
    assert event == {
        "type": "execution.changed",
        "executionId": str(execution.id),
        "application": "shop",
        "status": "RUNNING",
        "sequence": sequence,
        "stages": [],
    }
    assert hello == {"type": "hello", "sequence": sequence}, "a reconnecting page learns the latest sequence"


def test_a_reader_of_an_application_follows_a_real_execution_to_success(people, shop, workers):
    workers.start(1)
    headers = headers_for(people["bob"])

    async def conversation():
        socket = WebsocketCommunicator(application, "/ws/applications/shop/", headers=headers)
        assert await socket.connect() == (True, None)
        assert await socket.receive_json_from() == {"type": "hello", "sequence": None}
        execution = await sync_to_async(do_start_execution)(shop)
        events = []
        while not events or events[-1]["status"] != "SUCCEEDED":
            events.append(await socket.receive_json_from(timeout=30))
        await socket.disconnect()
        return execution, events

    execution, events = async_to_sync(conversation)()
    assert {event["executionId"] for event in events} == {str(execution.id)}
    stages = [(stage["refId"], stage["status"]) for event in events for stage in event["stages"]]
    assert ("1", "SUCCEEDED") in stages
    assert [event["sequence"] for event in events] == sorted({event["sequence"] for event in events})


def test_it_refuses_an_outsider(people, execution):
    # Not found, as the API answers: an outsider cannot tell an unreadable object from a missing one.
    assert refusal(f"/ws/executions/{execution.id}/", people["charlie"]) == consumers.NOT_FOUND
    assert refusal("/ws/applications/shop/", people["charlie"]) == consumers.NOT_FOUND


def test_it_refuses_an_anonymous_user(people, execution):
    assert refusal(f"/ws/executions/{execution.id}/") == consumers.FORBIDDEN
    assert refusal("/ws/applications/shop/") == consumers.FORBIDDEN


def test_it_answers_not_found_for_an_unknown_execution_application_or_kind(people):
    assert refusal(f"/ws/executions/{UNKNOWN_EXECUTION}/", people["bob"]) == consumers.NOT_FOUND
    assert refusal("/ws/applications/nowhere/", people["bob"]) == consumers.NOT_FOUND
    assert refusal("/ws/executions/not-a-uuid/", people["bob"]) == consumers.NOT_FOUND
    assert refusal("/ws/everything/", people["bob"]) == consumers.NOT_FOUND


def test_it_rejects_a_page_of_another_origin(people):
    headers = [(b"origin", b"https://evil.example"), *headers_for(people["bob"])[1:]]

    async def conversation():
        socket = WebsocketCommunicator(application, "/ws/applications/shop/", headers=headers)
        connected, _ = await socket.connect()
        return connected

    assert async_to_sync(conversation)() is False


def test_revoking_read_closes_the_readers_sockets_at_once(people, shop, execution):
    headers = headers_for(people["bob"])

    async def conversation():
        sockets = [
            WebsocketCommunicator(application, path, headers=headers)
            for path in (f"/ws/executions/{execution.id}/", "/ws/applications/shop/")
        ]
        for socket in sockets:
            assert await socket.connect() == (True, None)
            assert (await socket.receive_json_from())["type"] == "hello"
        await sync_to_async(do_revoke)(shop.application, people["bob"], "read", actor="admin")
        codes = [await close_code(socket) for socket in sockets]
        for socket in sockets:
            await socket.disconnect()
        return codes

    assert async_to_sync(conversation)() == [consumers.FORBIDDEN, consumers.FORBIDDEN]


def test_a_reader_who_lost_access_without_a_notice_gets_no_more_events(people, shop, execution, live, monkeypatch):
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.0)
    headers = headers_for(people["bob"])

    def revoke_quietly():
        remove_perm("pipelines.view_application", people["bob"], shop.application)

    async def conversation():
        socket = WebsocketCommunicator(application, f"/ws/executions/{execution.id}/", headers=headers)
        assert await socket.connect() == (True, None)
        assert (await socket.receive_json_from())["type"] == "hello"
        await sync_to_async(publish)(live, execution, "RUNNING")
        assert (await socket.receive_json_from(timeout=5))["status"] == "RUNNING"
        await sync_to_async(revoke_quietly)()
        await sync_to_async(publish)(live, execution, "SUCCEEDED")
        code = await close_code(socket)
        await socket.disconnect()
        return code

    assert async_to_sync(conversation)() == consumers.FORBIDDEN


def test_a_grant_leaves_the_readers_socket_open(people, shop, execution, live):
    headers = headers_for(people["bob"])

    async def conversation():
        socket = WebsocketCommunicator(application, f"/ws/executions/{execution.id}/", headers=headers)
        assert await socket.connect() == (True, None)
        assert (await socket.receive_json_from())["type"] == "hello"
        await sync_to_async(do_grant)(shop.application, people["charlie"], "read", actor="admin")
        await sync_to_async(publish)(live, execution, "RUNNING")
        event = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return event

    assert async_to_sync(conversation)()["status"] == "RUNNING"


def test_a_revoke_made_in_the_admin_closes_the_readers_socket(people, shop, execution):
    headers = headers_for(people["bob"])
    admin = Client()
    admin.force_login(User.objects.create_superuser("root"))
    page = f"/admin/pipelines/application/{shop.application.pk}/permissions/user-manage/{people['bob'].pk}/"

    def revoke_in_the_admin():
        # The form keeps what is ticked: ticking nothing takes read away. A browser's post of it still
        # carries the CSRF field (the test client checks no token), so the form is bound.
        assert admin.post(page, {"csrfmiddlewaretoken": "-"}).status_code == 302

    async def conversation():
        socket = WebsocketCommunicator(application, f"/ws/executions/{execution.id}/", headers=headers)
        assert await socket.connect() == (True, None)
        assert (await socket.receive_json_from())["type"] == "hello"
        await sync_to_async(revoke_in_the_admin)()
        code = await close_code(socket)
        await socket.disconnect()
        return code

    assert async_to_sync(conversation)() == consumers.FORBIDDEN
    assert AuditEvent.objects.get(action="permission.revoked").source == "admin"


# --- Many sockets share one permission answer ---------------------------------------------------------


async def open_sockets(path: str, headers, count: int = MANY) -> list[WebsocketCommunicator]:
    """``count`` sockets subscribed to ``path``, each past its hello."""
    sockets = [WebsocketCommunicator(application, path, headers=headers) for _ in range(count)]
    for socket in sockets:
        assert await socket.connect() == (True, None)
        assert (await socket.receive_json_from())["type"] == "hello"
    return sockets


async def disconnect_all(sockets) -> None:
    for socket in sockets:
        await socket.disconnect()


async def statuses_received(sockets, timeout: float = 5) -> list[str]:
    return [(await socket.receive_json_from(timeout=timeout))["status"] for socket in sockets]


async def codes_received(sockets) -> list[int]:
    return [await close_code(socket) for socket in sockets]


def queries_of_one_check(user, application_model) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert consumers.may_still_read(user.pk, application_model.pk)
    return len(queries)


def test_many_sockets_of_one_reader_make_one_permission_query_per_notice_and_per_period(
    people, shop, execution, live, answers, monkeypatch
):
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.5)
    monkeypatch.setattr(consumers, "REFRESH_SECONDS", 0.5)
    one_check = queries_of_one_check(people["bob"], shop.application)
    headers = headers_for(people["bob"])
    # Entered and left in the thread where the consumers' queries run: this test's own.
    capture = CaptureQueriesContext(connection)

    async def conversation():
        sockets = await open_sockets(f"/ws/executions/{execution.id}/", headers)
        checks_at_connect = answers.queries_started
        await sync_to_async(capture.__enter__)()
        # A notice (nothing changed), then an event: each socket has handled the notice when the event reaches it.
        await sync_to_async(publish_permissions_changed)(shop.application)
        await sync_to_async(publish)(live, execution, "RUNNING")
        after_notice = await statuses_received(sockets)
        # Past the period, the next event needs a fresh answer: one query for all the sockets again.
        await asyncio.sleep(0.6)
        await sync_to_async(publish)(live, execution, "SUCCEEDED")
        after_period = await statuses_received(sockets)
        await sync_to_async(capture.__exit__)(None, None, None)
        await disconnect_all(sockets)
        return checks_at_connect, after_notice, after_period

    checks_at_connect, after_notice, after_period = async_to_sync(conversation)()
    assert after_notice == ["RUNNING"] * MANY and after_period == ["SUCCEEDED"] * MANY
    assert checks_at_connect == 0, "the check made on connect is the answer the socket starts with"
    assert answers.queries_started == 2
    assert len(capture) == 2 * one_check, [query["sql"] for query in capture.captured_queries]


def test_revoking_read_closes_every_socket_of_the_reader_at_once_with_one_query(people, shop, execution, answers):
    headers = headers_for(people["bob"])

    async def conversation():
        sockets = await open_sockets(f"/ws/executions/{execution.id}/", headers)
        await sync_to_async(do_revoke)(shop.application, people["bob"], "read", actor="admin")
        # No event is published: only the notice can close them, well before any periodic re-check.
        codes = await asyncio.wait_for(codes_received(sockets), consumers.RECHECK_SECONDS)
        await disconnect_all(sockets)
        return codes

    assert async_to_sync(conversation)() == [consumers.FORBIDDEN] * MANY
    assert answers.queries_started == 1


@pytest.fixture
def dave(people, shop):
    """dave reads shop only through the shop team."""
    team = Group.objects.create(name="shop-team")
    do_grant(shop.application, team, "read", actor="setup")
    user = User.objects.create_user("dave")
    user.groups.add(team)
    return user


def leave_by_the_users_side(user, team):
    user.groups.remove(team)


def leave_by_the_teams_side(user, team):
    team.user_set.remove(user)


def team_emptied(user, team):
    team.user_set.clear()


def team_deleted(user, team):
    team.delete()


@pytest.mark.parametrize("leave", [leave_by_the_users_side, leave_by_the_teams_side, team_emptied, team_deleted])
def test_leaving_the_team_that_grants_read_closes_the_members_sockets(dave, execution, leave):
    headers = headers_for(dave)
    team = Group.objects.get(name="shop-team")

    async def conversation():
        sockets = await open_sockets(f"/ws/executions/{execution.id}/", headers, count=3)
        await sync_to_async(leave)(dave, team)
        codes = await codes_received(sockets)
        await disconnect_all(sockets)
        return codes

    assert async_to_sync(conversation)() == [consumers.FORBIDDEN] * 3


def deactivated(user):
    user.is_active = False
    user.save()


def no_longer_superuser(user):
    user.is_superuser = False
    user.save(update_fields=["is_superuser"])


def deleted(user):
    user.delete()


@pytest.mark.parametrize("change", [deactivated, no_longer_superuser, deleted])
def test_a_user_deactivated_demoted_or_deleted_has_their_sockets_closed(people, execution, change):
    root = User.objects.create_superuser("root")  # reads shop as a superuser, with no grant
    user = root if change is no_longer_superuser else people["bob"]
    headers = headers_for(user)

    async def conversation():
        sockets = await open_sockets(f"/ws/executions/{execution.id}/", headers, count=3)
        await sync_to_async(change)(user)
        codes = await codes_received(sockets)
        await disconnect_all(sockets)
        return codes

    assert async_to_sync(conversation)() == [consumers.FORBIDDEN] * 3


def test_one_users_answer_is_never_another_users(people, shop, execution, live):
    bob, charlie = people["bob"], people["charlie"]
    path = f"/ws/executions/{execution.id}/"
    bob_headers, charlie_headers = headers_for(bob), headers_for(charlie)

    async def conversation():
        bobs = await open_sockets(path, bob_headers, count=3)
        # bob's answer is kept and true; charlie, an outsider, is still refused.
        outsider = WebsocketCommunicator(application, path, headers=charlie_headers)
        assert await outsider.connect() == (True, None)
        refused = await close_code(outsider)
        await outsider.disconnect()
        await sync_to_async(do_grant)(shop.application, charlie, "read", actor="admin")
        charlies = await open_sockets(path, charlie_headers, count=3)
        # Taking read from bob closes his sockets, not charlie's, who go on receiving events.
        await sync_to_async(do_revoke)(shop.application, bob, "read", actor="admin")
        bob_codes = await codes_received(bobs)
        await sync_to_async(publish)(live, execution, "RUNNING")
        charlie_statuses = await statuses_received(charlies)
        await disconnect_all([*bobs, *charlies])
        return refused, bob_codes, charlie_statuses

    refused, bob_codes, charlie_statuses = async_to_sync(conversation)()
    assert refused == consumers.NOT_FOUND
    assert bob_codes == [consumers.FORBIDDEN] * 3
    assert charlie_statuses == ["RUNNING"] * 3


# --- One subscription per group, whatever the number of sockets -------------------------------------


def test_the_sockets_of_a_process_share_one_subscription_per_group_and_each_gets_every_event(
    people, execution, live
):
    from channels.layers import get_channel_layer

    from apps.pipelines.events import execution_group
    from cdplatform.live import GroupFanout, group_channel

    headers = headers_for(people["bob"])
    group = execution_group(execution.id)

    async def conversation():
        sockets = await open_sockets(f"/ws/executions/{execution.id}/", headers)
        layer = get_channel_layer()
        # The pub/sub layer's own bookkeeping for this loop: the channels it fans the group's messages out to.
        local = layer._get_layer()
        channels_in_group = len(local.groups.get(group_channel(group), ()))
        members = GroupFanout.of_running_loop().members(group)
        sent = [await sync_to_async(publish)(live, execution, status) for status in ("RUNNING", "SUCCEEDED")]
        received = [[(await socket.receive_json_from(timeout=5))["sequence"] for _ in sent] for socket in sockets]
        await disconnect_all(sockets)
        await asyncio.sleep(0.1)  # the group's reader ends with its last member
        return channels_in_group, members, sent, received, GroupFanout.of_running_loop().members(group), \
            len(local.groups.get(group_channel(group), ()))

    channels_in_group, members, sent, received, members_after, channels_after = async_to_sync(conversation)()
    assert channels_in_group == 1 and members == MANY
    assert received == [sent] * MANY, "every socket gets every event, in order"
    assert members_after == 0 and channels_after == 0


def test_a_client_that_stops_reading_is_closed_rather_than_buffered_without_bound(
    people, execution, live, monkeypatch
):
    monkeypatch.setattr(consumers, "MAX_PENDING", 3)
    stalled = asyncio.Event()

    async def never_written(self, text):
        await stalled.wait()  # the socket's writes never complete, as for a client that stopped reading

    monkeypatch.setattr(consumers.LiveUpdatesConsumer, "forward_event", never_written)
    headers = headers_for(people["bob"])

    async def conversation():
        socket = WebsocketCommunicator(application, f"/ws/executions/{execution.id}/", headers=headers)
        assert await socket.connect() == (True, None)
        assert (await socket.receive_json_from())["type"] == "hello"
        for _ in range(5):  # one being written, three waiting, then one too many
            await sync_to_async(publish)(live, execution, "RUNNING")
        code = await close_code(socket)
        stalled.set()
        await socket.disconnect()
        return code

    assert async_to_sync(conversation)() == consumers.TRY_AGAIN_LATER
