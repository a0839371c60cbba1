"""Operations endpoints: ``/healthz`` (alive), ``/readyz`` (ready to serve), ``/metrics`` (Prometheus).

No login, no CSRF token: load balancers and Prometheus send no cookies. These views read the
session only when the request carries a session cookie (``/readyz`` shows its details to staff),
so a probe or a scrape loads and creates none. Who sees what: registry_app/ops/access.py.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client.exposition import choose_encoder

from registry_app.ops.access import Access, request_metrics_access, sees_details
from registry_app.ops.health import readiness
from registry_app.ops.metrics import scrape_registry


@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """The process is up and serving requests; touches nothing else."""
    return HttpResponse("ok", content_type="text/plain")


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Database, broker and sync freshness; 200 when all pass, 503 otherwise.

    Anonymous callers get the verdict only; staff and the metrics token also get each check's detail.
    """
    report = readiness()
    body = report.as_dict() if sees_details(request) else {"status": "ready" if report.ok else "not ready"}
    return JsonResponse(body, status=200 if report.ok else 503)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    access = request_metrics_access(request)
    if access is Access.UNAUTHORIZED:
        response = HttpResponse("a bearer token is required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if access is Access.DISABLED:
        return HttpResponse("metrics are disabled: set METRICS_TOKEN\n", status=404, content_type="text/plain")
    if access is Access.FORBIDDEN:
        return HttpResponse("set METRICS_TOKEN to scrape through a proxy\n", status=403, content_type="text/plain")
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(scrape_registry()), content_type=content_type)
