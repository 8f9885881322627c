"""Live events: every state change reaches Channels subscribers of the execution and of its application."""

import asyncio
import threading

from channels.layers import get_channel_layer

from apps.pipelines.events import application_group, execution_group
from apps.pipelines.services import do_save_pipeline, do_start_execution
from tests.conftest import wait_for_execution


class Subscriber(threading.Thread):
    """Listens on a Channels group in its own event loop, as a WebSocket consumer would."""

    def __init__(self, group: str, until_status: str, timeout: float = 30.0):
        super().__init__(daemon=True)
        self.group, self.until_status, self.timeout = group, until_status, timeout
        self.messages: list[dict] = []
        self.ready = threading.Event()

    def run(self):
        asyncio.run(self._listen())

    async def _listen(self):
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(self.group, channel)
        self.ready.set()
        try:
            while True:
                message = await asyncio.wait_for(layer.receive(channel), self.timeout)
                self.messages.append(message)
                if message["status"] == self.until_status:
                    return
        except TimeoutError:
            return
        finally:
            await layer.group_discard(self.group, channel)


def test_subscribers_see_each_stage_start_and_finish_in_sequence(workers, redis_url):
    workers.start(1)
    pipeline, _ = do_save_pipeline(
        {
            "application": "live",
            "name": "events",
            "stages": [
                {"refId": "1", "name": "One", "type": "wait", "waitTime": 0},
                {"refId": "2", "name": "Two", "type": "wait", "waitTime": 1, "requisiteStageRefIds": ["1"]},
            ],
        }
    )
    by_application = Subscriber(application_group("live"), "SUCCEEDED")
    by_application.start()
    assert by_application.ready.wait(10)

    execution = do_start_execution(pipeline)
    by_execution = Subscriber(execution_group(execution.id), "SUCCEEDED")
    by_execution.start()
    assert by_execution.ready.wait(10)
    assert wait_for_execution(execution.id).status == "SUCCEEDED"
    by_application.join(15)
    by_execution.join(15)

    messages = by_application.messages
    assert messages, "no event reached the application's group"
    assert {m["executionId"] for m in messages} == {str(execution.id)}
    sequences = [m["sequence"] for m in messages]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    seen = [(stage["refId"], stage["status"]) for m in messages for stage in m["stages"]]
    assert seen.index(("1", "RUNNING")) < seen.index(("1", "SUCCEEDED")) < seen.index(("2", "RUNNING"))
    assert seen.index(("2", "RUNNING")) < seen.index(("2", "SUCCEEDED"))
    assert messages[-1]["status"] == "SUCCEEDED"
    assert by_execution.messages and by_execution.messages[-1]["status"] == "SUCCEEDED"
