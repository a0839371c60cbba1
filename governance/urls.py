from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from registry_app.sso.password_reset import ThrottledPasswordResetView
from registry_app.sso.views import LoginView
from registry_app.views import ops

urlpatterns = [
    # Exact paths (no trailing slash) for load balancers and Prometheus; see README, Operations.
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/login/", LoginView.as_view(), name="login"),  # local form and/or "Sign in with ..."
    path("accounts/password_reset/", ThrottledPasswordResetView.as_view(), name="password_reset"),  # rate-limited
    path("accounts/", include("django.contrib.auth.urls")),
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("", include("registry_app.api.urls")),  # /api/v1/ (docs/deploy-gate.md)
    path("", include("registry_app.urls")),
]
