"""What the notifications API shows: deliveries with their attempts, and an application's subscriptions."""

from __future__ import annotations

from rest_framework import serializers

from apps.notifications.choices import MOMENTS, TargetType
from apps.notifications.models import Delivery, DeliveryAttempt, Subscription


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    """One try at sending: when, whether it got through, and the error if not."""

    class Meta:
        model = DeliveryAttempt
        fields = ["number", "started_at", "finished_at", "succeeded", "retryable", "error"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    """One notification to one target for one event, and how its delivery went (the address as people may see it)."""

    application = serializers.CharField(source="application.name", read_only=True)
    execution = serializers.UUIDField(source="execution_id", read_only=True)
    target = serializers.CharField(source="target_hint", read_only=True)
    attempt_log = DeliveryAttemptSerializer(source="attempt_rows", many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = ["id", "application", "execution", "event_id", "moment", "target_type", "target", "source", "status",
                  "attempts", "next_attempt_at", "last_error", "created_at", "delivered_at", "attempt_log"]
        read_only_fields = fields


class SubscriptionSerializer(serializers.ModelSerializer):
    """An application-level subscription; ``address`` goes in and never comes back (``address_hint`` does)."""

    application = serializers.CharField(source="application.name", read_only=True)
    type = serializers.ChoiceField(choices=TargetType.choices)
    address = serializers.CharField(write_only=True, max_length=2000)
    when = serializers.ListField(child=serializers.ChoiceField(choices=MOMENTS), min_length=1, max_length=20)
    message = serializers.DictField(required=False)

    class Meta:
        model = Subscription
        fields = ["id", "application", "type", "address", "address_hint", "when", "message", "created_by",
                  "created_at"]
        read_only_fields = ["id", "application", "address_hint", "created_by", "created_at"]
