"""What starts pipelines: webhooks, git and registry pushes, CI, cron, other pipelines (Spinnaker's Igor)."""
