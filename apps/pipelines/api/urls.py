"""Routes of the pipelines API, registered on the shared router."""

from apps.pipelines.api.executions import ExecutionViewSet
from apps.pipelines.api.pipelines import ApplicationViewSet, PipelineViewSet
from cdplatform.api.urls import router  # noqa: F401

router.register("executions", ExecutionViewSet, basename="execution")
router.register("applications", ApplicationViewSet, basename="application")
router.register("pipelines", PipelineViewSet, basename="pipeline")
