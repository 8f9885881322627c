"""The deployments' pages: an application's clusters, their server group actions and traffic guards."""

from django.urls import path, re_path

from apps.deployments import views

app_name = "deployments"

urlpatterns = [
    path("applications/<str:name>/clusters/", views.application_clusters, name="clusters"),
    path("applications/<str:name>/clusters/traffic-guards/", views.add_traffic_guard, name="add-traffic-guard"),
    path("applications/<str:name>/clusters/traffic-guards/<str:account>/<str:cluster>/delete/",
         views.remove_traffic_guard, name="remove-traffic-guard"),
    re_path(r"^applications/(?P<name>[^/]+)/clusters/(?P<account>[^/]+)/(?P<server_group>[^/]+)/"
            r"(?P<action>resize|enable|disable|destroy|rollback)/$", views.server_group_action,
            name="server-group-action"),
    re_path(r"^applications/(?P<name>[^/]+)/clusters/kubernetes/(?P<account>[^/]+)/(?P<namespace>[^/]+)/"
            r"(?P<kind>[^/]+)/(?P<resource>[^/]+)/(?P<action>scale|enable|disable|delete|undo-rollout)/$",
            views.manifest_action, name="manifest-action"),
]
