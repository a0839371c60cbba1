from __future__ import annotations

from django.urls import path
from django.views.generic import RedirectView

from registry_app.views import audit as audit_views
from registry_app.views import compare, groups, lineage, profile, sync
from registry_app.views import endpoints as endpoint_views
from registry_app.views import findings as finding_views
from registry_app.views import queue as queue_views
from registry_app.views import revalidation as revalidation_views
from registry_app.views import review as review_views

app_name = "registry"

urlpatterns = [
    path("", RedirectView.as_view(url="/groups/", permanent=False), name="home"),
    path("groups/", groups.group_list, name="group_list"),
    path("groups/<str:group_name>/", groups.group_detail, name="group_detail"),
    path("groups/<str:group_name>/compare/", compare.group_compare, name="group_compare"),
    path("groups/<str:group_name>/watch/", profile.group_watch, name="group_watch"),
    path("groups/<str:group_name>/archive/", review_views.group_archive, name="group_archive"),
    # The package page is the review page.
    path("packages/<str:group_name>/<int:version>/", review_views.package_review, name="package_detail"),
    path("packages/<str:group_name>/<int:version>/signoff/", review_views.signoff, name="signoff"),
    path("packages/<str:group_name>/<int:version>/revoke/", review_views.revoke, name="revoke"),
    path("packages/<str:group_name>/<int:version>/exception/", review_views.policy_exception, name="policy_exception"),
    path("packages/<str:group_name>/<int:version>/findings/", finding_views.raise_finding, name="finding_raise"),
    path("findings/<int:finding_id>/<slug:action>/", finding_views.finding_action, name="finding_action"),
    path(
        "packages/<str:group_name>/<int:version>/signoffs/<int:signoff_id>/withdraw/",
        review_views.withdraw,
        name="signoff_withdraw",
    ),
    path(
        "packages/<str:group_name>/<int:version>/revalidation/signoff/",
        revalidation_views.revalidation_signoff,
        name="revalidation_signoff",
    ),
    path(
        "packages/<str:group_name>/<int:version>/revalidation/start/",
        revalidation_views.revalidation_start_view,
        name="revalidation_start",
    ),
    path("pushes/<uuid:push_id>/retry/", review_views.push_retry, name="push_retry"),
    path("queue/", queue_views.queue, name="queue"),
    path("profile/", profile.profile, name="profile"),
    path("sync/", sync.sync_status, name="sync_status"),
    path("sync/<slug:source_name>/run/", sync.sync_run, name="sync_run"),
    path("sync/runs/", sync.sync_run_list, name="sync_run_list"),
    path("sync/runs/<int:run_id>/", sync.sync_run_status, name="sync_run_status"),
    path("sync/notifications/retry/", sync.notifications_retry, name="notifications_retry"),
    # Audit: timelines, search, as-of answers, decisions made outside the dashboard, exports and packs.
    path("packages/<str:group_name>/<int:version>/audit/", audit_views.package_audit, name="package_audit"),
    path(
        "packages/<str:group_name>/<int:version>/audit/pack.zip",
        audit_views.package_audit_pack,
        name="package_audit_pack",
    ),
    path("groups/<str:group_name>/audit/", audit_views.group_audit, name="group_audit"),
    path("endpoints/", endpoint_views.endpoint_list_view, name="endpoint_list"),
    path("endpoints/<str:name>/", audit_views.endpoint_detail, name="endpoint_detail"),
    path("audit/", audit_views.audit_search, name="audit_search"),
    path("audit/bypasses/", audit_views.bypasses, name="audit_bypasses"),
    path("audit/pack.zip", audit_views.audit_period_pack, name="audit_period_pack"),
    path("as-of/", audit_views.as_of, name="as_of"),
    # Provenance: impact analysis of a data set, lineage artifact or job (views/lineage.py).
    path("lineage/", lineage.lineage, name="lineage"),
]
