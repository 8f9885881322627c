"""Routes of the dashboard's pipeline pages."""

from django.urls import path

from apps.pipelines import views

app_name = "pipelines"

urlpatterns = [
    path("", views.applications, name="applications"),
    path("new/application/", views.new_application, name="new-application"),
    path("applications/<str:name>/new-pipeline/", views.new_pipeline, name="new-pipeline"),
    path("applications/<str:name>/", views.application_detail, name="application"),
    path("applications/<str:name>/secrets/", views.application_secrets, name="secrets"),
    path("applications/<str:name>/secrets/<str:secret>/delete/", views.delete_secret, name="delete-secret"),
    path("pipelines/<uuid:pipeline_id>/run/", views.run_pipeline, name="run"),
    path("pipelines/<uuid:pipeline_id>/edit/", views.edit_pipeline, name="edit"),
    path("pipelines/document/", views.convert_document, name="document"),
    path("pipelines/<uuid:pipeline_id>/diff/", views.pipeline_diff, name="diff"),
    path("pipelines/<uuid:pipeline_id>/restore/", views.restore_revision, name="restore"),
    path("executions/<uuid:execution_id>/", views.execution_detail, name="execution"),
    path("executions/<uuid:execution_id>/cancel/", views.cancel_execution, name="cancel"),
    path("executions/<uuid:execution_id>/evaluate/", views.evaluate_expression, name="evaluate"),
    path("executions/<uuid:execution_id>/pause/", views.pause_execution, name="pause"),
    path("executions/<uuid:execution_id>/resume/", views.resume_execution, name="resume"),
    path("executions/<uuid:execution_id>/stages/<uuid:stage_id>/", views.stage_panel, name="stage"),
    path("executions/<uuid:execution_id>/stages/<uuid:stage_id>/restart/", views.restart_stage, name="restart"),
    path("executions/<uuid:execution_id>/stages/<uuid:stage_id>/skip-wait/", views.skip_wait, name="skip-wait"),
    path("executions/<uuid:execution_id>/stages/<uuid:stage_id>/judge/", views.judge_stage, name="judge"),
]
