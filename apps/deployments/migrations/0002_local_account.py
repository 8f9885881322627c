"""The zero-configuration account ``local``: the Docker engine of DOCKER_HOST, or the default socket."""

from django.db import migrations


def create_local(apps, schema_editor):
    apps.get_model("deployments", "DockerAccount").objects.get_or_create(name="local", defaults={"host": ""})


class Migration(migrations.Migration):
    dependencies = [("deployments", "0001_initial")]

    operations = [migrations.RunPython(create_local, migrations.RunPython.noop)]
