# The application grant tables belong to the app that owns applications now
# (apps/pipelines, migration 0002). Only Django's model state moves: the tables
# keep their names (db_table) and every row, and nothing is dropped.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='ApplicationGroupPermission'),
                migrations.DeleteModel(name='ApplicationUserPermission'),
            ],
            database_operations=[],
        ),
    ]
