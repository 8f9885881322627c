"""Drop the foreign-key indexes that a composite index or unique constraint already leads with.

``execution.application`` is covered by ``execution_app_recent``, ``execution.pipeline`` by
``execution_pipeline_recent`` and ``stageexecution.execution`` by ``unique_stage_ref_per_execution``.
Only the indexes go: the foreign-key constraints stay as they are (altering the fields the usual
way would drop and re-add them, checking every row again).
"""

import django.db.models.deletion
from django.db import migrations, models

# (index Django created for the foreign key, its table, its column)
COVERED = [
    ("pipelines_execution_application_id_8d4ba8e5", "pipelines_execution", "application_id"),
    ("pipelines_execution_pipeline_id_b28c7dc9", "pipelines_execution", "pipeline_id"),
    ("pipelines_stageexecution_execution_id_02151504", "pipelines_stageexecution", "execution_id"),
]


class Migration(migrations.Migration):

    dependencies = [
        ("pipelines", "0010_application_name_any_case"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX "{name}" ON "{table}" ("{column}")',
                )
                for name, table, column in COVERED
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="execution",
                    name="application",
                    field=models.ForeignKey(
                        db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="executions",
                        to="pipelines.application",
                    ),
                ),
                migrations.AlterField(
                    model_name="execution",
                    name="pipeline",
                    field=models.ForeignKey(
                        db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL,
                        related_name="executions", to="pipelines.pipeline",
                    ),
                ),
                migrations.AlterField(
                    model_name="stageexecution",
                    name="execution",
                    field=models.ForeignKey(
                        db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="stages",
                        to="pipelines.execution",
                    ),
                ),
            ],
        ),
    ]
