"""Operations endpoints: ``/healthz`` (alive), ``/readyz`` (ready to serve), ``/metrics`` (Prometheus).

No login, no session, no CSRF token: load balancers and Prometheus send no cookies, and these
views never touch ``request.user`` or the session, so none is loaded or created.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client.exposition import choose_encoder

from registry_app.ops.health import readiness
from registry_app.ops.metrics import Access, metrics_access, scrape_registry

_PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """The process is up and serving requests; touches nothing else."""
    return HttpResponse("ok", content_type="text/plain")


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Database, broker and sync freshness; 200 when all pass, 503 otherwise, with each check's detail."""
    report = readiness()
    return JsonResponse(report.as_dict(), status=200 if report.ok else 503)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    access = metrics_access(
        token=settings.METRICS_TOKEN,
        authorization=request.headers.get("Authorization", ""),
        remote_addr=request.META.get("REMOTE_ADDR", ""),
        proxied=any(request.META.get(name) for name in _PROXY_HEADERS),
    )
    if access is Access.UNAUTHORIZED:
        response = HttpResponse("a bearer token is required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if access is Access.FORBIDDEN:
        return HttpResponse("set METRICS_TOKEN to scrape from another host\n", status=403, content_type="text/plain")
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(scrape_registry()), content_type=content_type)
