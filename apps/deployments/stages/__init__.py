"""Deployments' stage types (Spinnaker's names and fields, ``cloudProvider: docker``), registered when Django starts."""
