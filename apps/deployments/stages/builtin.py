"""Imports every stage type of deployments, so that each registers itself."""

from apps.deployments.stages import (  # noqa: F401
    bake,
    canary,
    clusters,
    deploy,
    find_artifact,
    images_and_jobs,
    load_balancers,
    manifest_jobs,
    manifest_operations,
    manifests,
    preconditions,
)
