"""Deployment accounts, server groups and the deploy and bake stages (Spinnaker's Clouddriver and Rosco)."""
