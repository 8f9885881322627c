"""The consumer process of the killed-consumer test: ``python -m tests.pipelines.event_sink PROGRESS_FILE``.

Its handler writes each event to the ``test_event_sink`` table, in the
transaction that advances its cursor, and appends the event's id to the
progress file (outside any transaction, so the test sees how far a batch
got before it kills the process). It is slow on purpose: a batch takes
about a second, so the kill lands inside one.
"""

import os
import sys
import time

import django

CONSUMER = "tests.sink"
BATCH = 20
SINK_TABLE = "test_event_sink"


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdplatform.settings")
    django.setup()
    from django.db import connection

    from apps.pipelines.eventlog import consume, register_consumer

    progress = sys.argv[1]

    def handle(events) -> None:
        with connection.cursor() as cursor:
            for event in events:
                cursor.execute(f"INSERT INTO {SINK_TABLE} (event_id, pid) VALUES (%s, %s)", [event.id, os.getpid()])
                with open(progress, "a") as seen:
                    seen.write(f"{event.id}\n")
                time.sleep(0.05)

    register_consumer(CONSUMER, handle, batch_size=BATCH)
    while True:
        if consume(CONSUMER) == 0:
            time.sleep(0.05)


if __name__ == "__main__":
    main()
