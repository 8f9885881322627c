"""REST API for applications, pipelines and executions."""
