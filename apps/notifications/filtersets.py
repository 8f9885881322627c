"""List filters of notifications, shared by the API and the deliveries page."""

import django_filters

from apps.notifications.choices import DeliveryStatus, TargetType
from apps.notifications.models import Delivery


class DeliveryFilterSet(django_filters.FilterSet):
    """Deliveries by application, execution, status and target type."""

    application = django_filters.CharFilter(field_name="application__name", help_text="Application name.")
    execution = django_filters.UUIDFilter(field_name="execution_id", help_text="Execution id.")
    status = django_filters.MultipleChoiceFilter(choices=DeliveryStatus.choices, help_text="One or more statuses.")
    target_type = django_filters.ChoiceFilter(choices=TargetType.choices, help_text="slack, email, webhook, ...")

    class Meta:
        model = Delivery
        fields = ["application", "execution", "status", "target_type"]
