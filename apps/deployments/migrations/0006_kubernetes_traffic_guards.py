# Traffic guards for Kubernetes clusters too: a guard names a Docker engine account or a Kubernetes account
# and namespace (``location``); the Docker guards already there keep their account and an empty location.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('deployments', '0005_manifest_namespaces'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='trafficguard',
            name='unique_traffic_guard',
        ),
        migrations.AddField(
            model_name='trafficguard',
            name='kubernetes_account',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='traffic_guards', to='deployments.kubernetesaccount'),
        ),
        migrations.AddField(
            model_name='trafficguard',
            name='location',
            field=models.CharField(blank=True, help_text='The namespace of a Kubernetes guard.', max_length=253),
        ),
        migrations.AlterField(
            model_name='trafficguard',
            name='account',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='traffic_guards', to='deployments.dockeraccount'),
        ),
        migrations.AddConstraint(
            model_name='trafficguard',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('account__isnull', False), ('kubernetes_account__isnull', True), ('location', '')), models.Q(('account__isnull', True), ('kubernetes_account__isnull', False), models.Q(('location', ''), _negated=True)), _connector='OR'), name='traffic_guard_one_account'),
        ),
        migrations.AddConstraint(
            model_name='trafficguard',
            constraint=models.UniqueConstraint(condition=models.Q(('account__isnull', False)), fields=('account', 'cluster'), name='unique_traffic_guard'),
        ),
        migrations.AddConstraint(
            model_name='trafficguard',
            constraint=models.UniqueConstraint(condition=models.Q(('kubernetes_account__isnull', False)), fields=('kubernetes_account', 'location', 'cluster'), name='unique_kubernetes_traffic_guard'),
        ),
    ]
