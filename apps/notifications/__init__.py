"""Notifications of pipeline and stage events to Slack, e-mail and webhooks (Spinnaker's Echo)."""
