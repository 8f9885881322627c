"""The read-permission answers that a web process's live sockets share (apps/pipelines/live_access.py).

The check is a stand-in that counts its calls and can be held back or made to
fail; the sockets themselves are exercised in test_consumers.py.
"""

import asyncio
import threading
import time

import pytest

from apps.pipelines.live_access import SharedAnswers

BOB_ON_SHOP = (1, 10)
CHARLIE_ON_SHOP = (2, 10)


class Check:
    """A check that answers from ``allowed`` (by user id), counts its calls, and waits for ``go`` if cleared."""

    def __init__(self, allowed: dict[int, bool]):
        self.allowed = allowed
        self.calls: list[tuple[int, int]] = []
        self.go = threading.Event()
        self.go.set()
        self.error: Exception | None = None

    def __call__(self, user_id: int, application_id: int) -> bool:
        self.calls.append((user_id, application_id))
        assert self.go.wait(5)
        if self.error is not None:
            raise self.error
        return self.allowed[user_id]


def test_sockets_that_ask_together_share_one_query():
    check = Check({1: True})
    answers = SharedAnswers(check)

    async def scenario():
        answers.hold(BOB_ON_SHOP, True, time.monotonic() - 60)
        check.go.clear()
        waiting = [asyncio.ensure_future(answers.allowed(BOB_ON_SHOP, not_before=time.monotonic())) for _ in range(50)]
        await asyncio.sleep(0.1)
        check.go.set()
        return await asyncio.gather(*waiting)

    assert asyncio.run(scenario()) == [True] * 50
    assert check.calls == [BOB_ON_SHOP]


def test_a_fresh_enough_answer_makes_no_query_and_an_old_one_is_refreshed_in_the_background():
    check = Check({1: False})
    answers = SharedAnswers(check)

    async def scenario():
        connected = time.monotonic()
        answers.hold(BOB_ON_SHOP, True, connected)
        fresh = await answers.allowed(BOB_ON_SHOP, not_before=connected - 5)
        calls_when_fresh = len(check.calls)
        # Old enough to refresh, not too old to use: answered at once from what is kept, refreshed meanwhile.
        kept = await answers.allowed(BOB_ON_SHOP, not_before=connected - 5, refresh_after=connected + 1)
        await asyncio.sleep(0.2)
        refreshed = await answers.allowed(BOB_ON_SHOP, not_before=connected)
        return fresh, calls_when_fresh, kept, refreshed

    assert asyncio.run(scenario()) == (True, 0, True, False)
    assert len(check.calls) == 1


def test_one_users_answer_is_not_another_users():
    check = Check({1: True, 2: False})
    answers = SharedAnswers(check)

    async def scenario():
        now = time.monotonic()
        answers.hold(BOB_ON_SHOP, True, now)
        answers.hold(CHARLIE_ON_SHOP, False, now)
        return (
            await answers.allowed(BOB_ON_SHOP, not_before=now),
            await answers.allowed(CHARLIE_ON_SHOP, not_before=now),
        )

    assert asyncio.run(scenario()) == (True, False)


def test_a_failed_query_fails_its_waiters_and_the_next_caller_queries_again():
    check = Check({1: True})
    check.error = ConnectionError("database gone")
    answers = SharedAnswers(check)

    async def scenario():
        answers.hold(BOB_ON_SHOP, True, time.monotonic() - 60)
        results = await asyncio.gather(
            *(answers.allowed(BOB_ON_SHOP, not_before=time.monotonic()) for _ in range(3)), return_exceptions=True
        )
        check.error = None
        again = await answers.allowed(BOB_ON_SHOP, not_before=time.monotonic())
        return results, again

    results, again = asyncio.run(scenario())
    assert all(isinstance(result, ConnectionError) for result in results)
    assert again is True
    assert len(check.calls) == 2


def test_a_socket_that_goes_while_waiting_does_not_cancel_the_others_query():
    check = Check({1: True})
    answers = SharedAnswers(check)

    async def scenario():
        answers.hold(BOB_ON_SHOP, True, time.monotonic() - 60)
        check.go.clear()
        asked = time.monotonic()
        leaving = asyncio.ensure_future(answers.allowed(BOB_ON_SHOP, not_before=asked))
        staying = asyncio.ensure_future(answers.allowed(BOB_ON_SHOP, not_before=asked))
        await asyncio.sleep(0.1)
        leaving.cancel()
        check.go.set()
        return await staying

    assert asyncio.run(scenario()) is True
    assert len(check.calls) == 1


def test_an_answer_is_forgotten_with_the_last_socket_that_held_it():
    check = Check({1: True})
    answers = SharedAnswers(check)

    async def scenario():
        now = time.monotonic()
        answers.hold(BOB_ON_SHOP, True, now)
        answers.hold(BOB_ON_SHOP, True, now)
        answers.release(BOB_ON_SHOP)
        kept = await answers.allowed(BOB_ON_SHOP, not_before=now)
        answers.release(BOB_ON_SHOP)
        answers.hold(BOB_ON_SHOP, True, now - 60)
        return kept, await answers.allowed(BOB_ON_SHOP, not_before=now)

    assert asyncio.run(scenario()) == (True, True)
    assert len(check.calls) == 1, "after the last socket went, the old answer was not kept"


@pytest.mark.parametrize("notice", ["a1b2", None])
def test_the_sockets_told_one_notice_need_an_answer_from_after_it_was_first_seen(notice):
    answers = SharedAnswers(Check({}))
    first = answers.first_seen(notice)
    time.sleep(0.01)
    later = answers.first_seen(notice)
    assert (later == first) is (notice is not None), "a notice without an id is seen anew by each socket"
