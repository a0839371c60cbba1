from __future__ import annotations

from django.urls import path
from django.views.generic import RedirectView

from registry_app.views import groups, packages, profile, sync

app_name = "registry"

urlpatterns = [
    path("", RedirectView.as_view(url="/groups/", permanent=False), name="home"),
    path("groups/", groups.group_list, name="group_list"),
    path("groups/<str:group_name>/", groups.group_detail, name="group_detail"),
    path("groups/<str:group_name>/watch/", profile.group_watch, name="group_watch"),
    path("packages/<str:group_name>/<int:version>/", packages.package_detail, name="package_detail"),
    path("profile/", profile.profile, name="profile"),
    path("sync/", sync.sync_status, name="sync_status"),
    path("sync/<slug:source_name>/run/", sync.sync_run, name="sync_run"),
    path("sync/runs/<int:run_id>/", sync.sync_run_status, name="sync_run_status"),
]
