"""The triggers' routes: Spinnaker's webhook paths (so a team moving over re-points its hooks), and the pages."""

from django.urls import path

from apps.triggers import views

app_name = "triggers"

urlpatterns = [
    path("applications/<str:name>/triggers/", views.application_triggers, name="application"),
    path("webhooks/git/<str:source>", views.git_webhook, name="git"),
    path("webhooks/git/<str:source>/", views.git_webhook),
    path("webhooks/webhook/<str:source>", views.generic_webhook, name="webhook"),
    path("webhooks/webhook/<str:source>/", views.generic_webhook),
    path("webhooks/jenkins/<str:master>", views.jenkins_webhook, name="jenkins"),
    path("webhooks/jenkins/<str:master>/", views.jenkins_webhook),
    path("webhooks/docker/<str:account>", views.docker_notifications, name="docker"),
    path("webhooks/docker/<str:account>/", views.docker_notifications),
]
