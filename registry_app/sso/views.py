"""Login page (local form and/or "Sign in with ..."), and the OIDC views with SSO's on/off and errors.

The library's views read the provider's endpoints when they are built; these resolve them only
when a person actually starts or finishes an SSO login, and answer 404 while SSO is not configured.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from registry_app.sso.backends import REQUEST_ERROR_ATTR
from registry_app.sso.discovery import DiscoveryError, provider_endpoints

__all__ = ["LoginView", "SSOAuthenticateView", "SSOCallbackView"]


class LoginView(auth_views.LoginView):
    """Django's login view; with ``LOCAL_LOGIN_ENABLED=false`` the form is hidden and a POST gets 403."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.LOCAL_LOGIN_ENABLED:
            context = self.get_context_data(local_login_refused=True)
            return self.render_to_response(context, status=403)
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(
            {
                "local_login_enabled": settings.LOCAL_LOGIN_ENABLED,
                "sso_enabled": settings.OIDC_ENABLED,
                "sso_provider_name": settings.OIDC_PROVIDER_NAME,
            }
        )
        return context


def _login_page() -> HttpResponseRedirect:
    return HttpResponseRedirect(resolve_url(settings.LOGIN_URL))


class SSOAuthenticateView(OIDCAuthenticationRequestView):
    """``/oidc/authenticate/?next=...``: redirect to the provider's authorization endpoint."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)  # skip the eager settings read
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not configured")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider_endpoints().authorization_endpoint
        except DiscoveryError:
            messages.error(request, f"{settings.OIDC_PROVIDER_NAME} cannot be reached right now; try again later.")
            return _login_page()
        return super().get(request)


class SSOCallbackView(OIDCAuthenticationCallbackView):
    """``/oidc/callback/``: the library's checks (state, nonce from the session), then ours in the backend."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not configured")
        return super().get(request)

    def login_failure(self) -> HttpResponse:
        request = self.request
        reason = getattr(request, REQUEST_ERROR_ATTR, "")
        if request.GET.get("error"):
            reason = f"the provider answered {request.GET['error'][:100]}"
        elif not reason:
            reason = "the login could not be completed (expired or already used?)"
        messages.error(request, f"Sign-in with {settings.OIDC_PROVIDER_NAME} failed: {reason}.")
        return _login_page()
