"""Routes of notifications: Slack's endpoints and the pages."""

from django.urls import path

from apps.notifications import views

app_name = "notifications"

urlpatterns = [
    path("webhooks/slack/interactions", views.slack_interactions, name="slack-interactions"),
    path("webhooks/slack/commands", views.slack_commands, name="slack-commands"),
    path("profile/slack/", views.slack_link, name="slack-link"),
    path("notifications/", views.deliveries, name="deliveries"),
]
