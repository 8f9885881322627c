"""The canary configs pages of an application."""

from django.urls import path

from apps.canary import views

app_name = "canary"

urlpatterns = [
    path("applications/<str:name>/canary-configs/", views.application_configs, name="configs"),
    path("applications/<str:name>/canary-configs/<int:config_id>/", views.edit_config, name="config"),
    path("applications/<str:name>/canary-configs/<int:config_id>/delete/", views.delete_config, name="delete"),
]
