"""Drop the index on ``stageexecution.next_run_at``: no query needs it, and every step paid for it.

Its one reader, the sweeper's search for overdue steps, filters on the execution being RUNNING, and
PostgreSQL reaches those few stages through ``execution_status`` and ``unique_stage_ref_per_execution``
(EXPLAIN ANALYZE on 50,000 executions and 500,000 stages: 0.28 ms without the index, 2.4 ms with it).
Nearly every step moves ``next_run_at``, so with the index no stage UPDATE could be a HOT update: each
wrote a new entry into every index of the table.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("pipelines", "0011_drop_indexes_covered_by_others"),
    ]

    operations = [
        migrations.AlterField(
            model_name="stageexecution",
            name="next_run_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
