"""Pipelines, executions and the engine that runs them (Spinnaker's Orca and Front50)."""
