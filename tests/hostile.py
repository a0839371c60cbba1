"""Hostile registry content and the checks that prove it stays data.

``build_site(texts)`` stores one string per registry-supplied field (group, package, metadata,
model cards, evaluation reports, endpoints, CloudTrail events, sync errors, observations) through
the factories and audit builders, and returns the URLs of every page that shows them.
``audit_html(html)`` parses a page and lists every executable or styling construct that did not
come from our own templates: a ``<script>`` without a same-origin ``src``, any ``on*`` attribute, a
``javascript:``/``vbscript:``/``data:text/html`` URL, a ``<style>`` element or ``style=`` attribute,
and elements our templates never render (``iframe``, ``img``, ``object``, ``embed``, ``base``,
``meta`` outside ``<head>``, ``form`` posting elsewhere).

Used by the fuzz test (tests/views/test_fuzz_escaping.py), the CSP page test and the browser
tests (tests/browser/test_csp.py, tests/browser/test_xss.py).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from registry_app.models import CloudTrailEvent, EndpointDeployment, ModelPackage, RegistrySource
from registry_app.models.registry import ApprovalStatus
from registry_app.review.queue_state import review_state_refresh
from tests.audit.builders import cloudtrail, observe
from tests.factories import (
    EndpointFactory,
    EndpointVariantFactory,
    EvaluationReportFactory,
    MetricFactory,
    ModelCardFactory,
    ModelPackageFactory,
    ModelPackageGroupFactory,
    RegistrySourceFactory,
    SyncRunFactory,
    UserFactory,
)

ROLES = ("ml-lead", "fairness", "compliance")

# Classic and less classic ways out of a text node or an attribute value.
PAYLOADS: tuple[str, ...] = (
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1">',
    "<svg onload=window.__xss=1>",
    "<svg><script>window.__xss=1</script></svg>",
    "javascript:window.__xss=1",
    " JaVaScRiPt:window.__xss=1",
    '"><script>window.__xss=1</script>',
    "'><img src=x onerror=window.__xss=1>",
    '" onmouseover="window.__xss=1" x="',
    "' autofocus onfocus='window.__xss=1",
    "</textarea><script>window.__xss=1</script>",
    "</title><script>window.__xss=1</script>",
    "</code></pre><script>window.__xss=1</script>",
    '<a href="javascript:window.__xss=1">click</a>',
    '<iframe srcdoc="<script>window.__xss=1</script>"></iframe>',
    "\u202e<script>window.__xss=1</script>\u202c",
    "\uff1cscript\uff1ewindow.__xss=1\uff1c/script\uff1e",
    "<scr<script>ipt>window.__xss=1</scr</script>ipt>",
    "{{ 7|add:7 }}{% now 'Y' %}",
    "<style>body{display:none}</style>",
    '<div style="background:url(javascript:window.__xss=1)">',
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=1>",
    "&lt;script&gt;window.__xss=1&lt;/script&gt;",
    "<!--<script>window.__xss=1</script>-->",
    '<base href="//evil.example/">',
    '<form action="javascript:window.__xss=1"><button>go</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:window.__xss=1">',
    "<object data=javascript:window.__xss=1></object>",
)

# Fields whose values end up in URLs (path segments) as well as in text: SageMaker names never hold "/",
# and Django's ``str`` path converter cannot carry one either.
URL_FIELDS = frozenset({"group_name", "endpoint_name"})
# Column limits (PostgreSQL enforces them, SQLite does not): a longer value is cut, its token kept.
MAX_LENGTH = {
    "group_name": 170,
    "endpoint_name": 63,
    "variant_name": 63,
    "model_name": 63,
    "metric_name": 255,
    "metric_facet": 255,
    "ct_actor": 256,
    "ct_event_name": 128,
    "ct_endpoint_name": 63,
}

# Every registry-supplied field the pages show, in a fixed order (tokens are numbered by position).
FIELDS: tuple[str, ...] = (
    "group_name",
    "group_description",
    "tag_key",
    "tag_value",
    "package_description",
    "approval_description",
    "lifecycle_stage_description",
    "metadata_property",
    "customer_metadata_key",
    "customer_metadata_value",
    "card_purpose",
    "card_overview",
    "card_custom_key",
    "card_custom_value",
    "card_list_item",
    "card_eval_name",
    "card_metric_name",
    "standalone_card_text",
    "metric_name",
    "metric_facet",
    "report_label",
    "report_uri",
    "report_error",
    "endpoint_name",
    "variant_name",
    "model_name",
    "ct_actor",
    "ct_user_agent",
    "ct_request_value",
    "ct_event_name",
    "ct_endpoint_name",
    "sync_error_subject",
    "sync_error_message",
    "observation_field",
    "observation_value",
)


def token(index: int) -> str:
    """A marker that survives escaping, truncation and humanising (letters and digits only)."""
    return f"zq{index:02d}q"


def clamp(name: str, text: str) -> str:
    if name in URL_FIELDS:
        text = text.replace("/", "").strip() or "x"
    text = text.replace("\x00", "")
    limit = MAX_LENGTH.get(name)
    return text[:limit] if limit else text


def rotate_payloads(round_no: int) -> dict[str, str]:
    """Round ``n``: field ``i`` gets payload ``(i + n) % len(PAYLOADS)`` behind its token."""
    return {name: clamp(name, token(i) + PAYLOADS[(i + round_no) % len(PAYLOADS)]) for i, name in enumerate(FIELDS)}


def benign_texts() -> dict[str, str]:
    """Ordinary values (token plus field name) for the same fields, for tests about the pages themselves."""
    return {name: clamp(name, f"{token(i)}-{name.replace('_', '-')}") for i, name in enumerate(FIELDS)}


@dataclass
class Site:
    user: Any
    package: ModelPackage
    pages: dict[str, str] = field(default_factory=dict)


def build_site(texts: dict[str, str], *, source: RegistrySource | None = None) -> Site:
    """Store ``texts`` (field -> string) in every place a registry record can carry them."""
    t = texts
    now = timezone.now()
    source = source or RegistrySourceFactory(name="prod-eu", region="eu-west-1", account_id="111122223333")
    group = ModelPackageGroupFactory(
        source=source, name=t["group_name"], description=t["group_description"], tags={t["tag_key"]: t["tag_value"]}
    )
    card_content = {
        "model_overview": {"model_description": t["card_overview"], "model_owner": t["card_list_item"]},
        "intended_uses": {
            "purpose_of_model": t["card_purpose"],
            "intended_uses": t["card_purpose"],
            "risk_rating": "High",
            "factors_affecting_model_efficiency": t["card_list_item"],
        },
        "business_details": {"business_problem": t["card_overview"], "line_of_business": t["card_list_item"]},
        "training_details": {"training_observations": t["card_overview"]},
        "evaluation_details": [
            {
                "name": t["card_eval_name"],
                "evaluation_observation": t["card_overview"],
                "metric_groups": [
                    {
                        "name": t["card_eval_name"],
                        "metric_data": [{"name": t["card_metric_name"], "type": "number", "value": 0.91}],
                    }
                ],
            }
        ],
        "additional_information": {
            "ethical_considerations": t["card_purpose"],
            "caveats_and_recommendations": t["card_overview"],
            "custom_details": {t["card_custom_key"]: t["card_custom_value"]},
        },
    }
    standalone = ModelCardFactory(
        source=source,
        name=clamp("endpoint_name", "card-" + t["group_name"])[:63],
        content={
            "model_overview": {"model_description": t["standalone_card_text"]},
            "intended_uses": {"purpose_of_model": t["standalone_card_text"], "risk_rating": "Low"},
        },
    )
    common: dict[str, Any] = {
        "group": group,
        "metadata_properties": {"Repository": t["metadata_property"], "CommitId": t["metadata_property"]},
        "customer_metadata": {t["customer_metadata_key"]: t["customer_metadata_value"], "owner": "risk"},
        "lifecycle_stage": "Staging",
        "lifecycle_stage_description": t["lifecycle_stage_description"],
    }
    approved = ModelPackageFactory(
        version=1,
        approval_status=ApprovalStatus.APPROVED,
        description=t["package_description"],
        approval_description=t["approval_description"],
        model_card=standalone,
        **common,
    )
    pending = ModelPackageFactory(
        version=2,
        approval_status=ApprovalStatus.PENDING,
        description=t["package_description"],
        approval_description=t["approval_description"],
        embedded_card_status="PendingReview",
        embedded_card_content=card_content,
        **common,
    )
    curve = {"x": [0, 0.1, 1], "y": [0, 0.8, 1], "x_label": t["report_label"], "y_label": t["report_label"]}
    for package in (approved, pending):
        report = EvaluationReportFactory(
            package=package,
            slot="ModelQuality.Statistics",
            s3_uri=t["report_uri"],
            curves={t["report_label"]: curve},
            confusion_matrix={"labels": [t["report_label"], "b"], "matrix": [[5, 1], [2, 7]]},
            document={"binary_classification_metrics": {t["report_label"]: {"value": 0.5}}},
        )
        MetricFactory(report=report, name=t["metric_name"], value=0.9 if package is approved else 0.93)
        MetricFactory(report=report, name="auc", value=0.91)
        bias = EvaluationReportFactory(package=package, slot="Bias.PostTrainingReport", kind="clarify_bias")
        MetricFactory(
            report=bias, name="DPPL", value=0.02, facet=t["metric_facet"], stage="post_training", kind="clarify_bias"
        )
    EvaluationReportFactory(
        package=pending, slot="Explainability.Report", status="parse_error", error=t["report_error"], document=None
    )
    observe(pending, now - dt.timedelta(hours=2), {t["observation_field"]: [None, t["observation_value"]]})

    endpoint = EndpointFactory(source=source, name=t["endpoint_name"], config_name=t["endpoint_name"])
    EndpointVariantFactory(
        endpoint=endpoint, package=approved, variant_name=t["variant_name"], model_name=t["model_name"]
    )
    EndpointDeployment.objects.create(
        source=source,
        endpoint_name=t["endpoint_name"],
        variant_name=t["variant_name"],
        config_name=t["endpoint_name"],
        model_name=t["model_name"],
        package_arn=approved.arn,
        package=approved,
        weight=1.0,
        started_at=now - dt.timedelta(days=2),
        evidence={"note": t["ct_actor"]},
    )
    event = cloudtrail(
        "UpdateModelPackage",
        now - dt.timedelta(hours=3),
        actor=t["ct_actor"],
        package=pending,
        request={"modelApprovalStatus": "PendingManualApproval", "approvalDescription": t["ct_request_value"]},
    )
    raw = dict(event.raw)
    raw["userAgent"] = t["ct_user_agent"]
    raw["sourceIPAddress"] = t["ct_user_agent"]
    CloudTrailEvent.objects.filter(pk=event.pk).update(raw=raw)
    cloudtrail(
        "UpdateEndpoint",
        now - dt.timedelta(days=1),
        actor=t["ct_actor"],
        endpoint_name=t["endpoint_name"],
        request={"endpointConfigName": t["ct_request_value"]},
    )
    cloudtrail(t["ct_event_name"], now - dt.timedelta(hours=1), actor=t["ct_actor"], package=pending)
    # CloudTrail keeps refused calls' parameters verbatim: an endpoint name no endpoint can have ("/").
    ct_endpoint = t["ct_endpoint_name"][:60] + "/x"
    cloudtrail(
        "UpdateEndpoint",
        now - dt.timedelta(hours=4),
        actor=t["ct_actor"],
        package=pending,
        endpoint_name=ct_endpoint,
        error_code="ValidationException",
    )
    SyncRunFactory(
        source=source,
        status="partial",
        errors=[{"subject": t["sync_error_subject"], "message": t["sync_error_message"]}, t["sync_error_message"]],
        counts={"packages_seen": 2},
    )

    review_state_refresh([approved.pk, pending.pk])  # the stored queue rows, as the sync's hook writes them
    user = UserFactory(username="hostile-reviewer", is_staff=True)
    for role in ROLES:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    name, endpoint_name = group.name, endpoint.name
    at = (now - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    pages = {
        "groups": reverse("registry:group_list"),
        "groups search": reverse("registry:group_list") + "?" + urlencode({"q": t["group_description"][:200]}),
        "group": reverse("registry:group_detail", args=[name]),
        "compare": reverse("registry:group_compare", args=[name]) + "?versions=1,2",
        "review page": reverse("registry:package_detail", args=[name, 2]),
        "approved package": reverse("registry:package_detail", args=[name, 1]),
        "package timeline": reverse("registry:package_audit", args=[name, 2]),
        "group timeline": reverse("registry:group_audit", args=[name]),
        "endpoint": reverse("registry:endpoint_detail", args=[endpoint_name]),
        "audit search": reverse("registry:audit_search"),
        "audit search by actor": reverse("registry:audit_search") + "?" + urlencode({"actor": t["ct_actor"]}),
        "as-of": reverse("registry:as_of") + "?" + urlencode({"endpoint": endpoint_name, "at": at}),
        "as-of refused name": reverse("registry:as_of") + "?" + urlencode({"endpoint": ct_endpoint, "at": at}),
        "bypasses": reverse("registry:audit_bypasses"),
        "queue": reverse("registry:queue"),
        "sync": reverse("registry:sync_status"),
        "profile": reverse("registry:profile"),
    }
    return Site(user=user, package=pending, pages=pages)


# ----------------------------------------------------------------------------------------- the checks

_BAD_URL = re.compile(r"^(javascript|vbscript|data\s*:\s*text/html)", re.IGNORECASE)
_URL_ATTRS = frozenset({"href", "src", "action", "formaction", "xlink:href", "data", "poster", "background"})
# Elements our templates never render; any of them in a page came from data.
_FOREIGN_TAGS = frozenset({"iframe", "img", "object", "embed", "base", "frame", "frameset", "applet", "style", "math"})
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]+")


@dataclass
class Finding:
    tag: str
    detail: str
    line: int
    csp: bool = True  # False: allowed by a strict CSP, but never produced by our own templates

    def __str__(self) -> str:
        return f"line {self.line}: <{self.tag}> {self.detail}"


class _Auditor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.findings: list[Finding] = []
        self.text: list[str] = []
        self.in_head = False
        self.forms: list[str] = []

    def _add(self, tag: str, detail: str, *, csp: bool = True) -> None:
        self.findings.append(Finding(tag, detail, self.getpos()[0], csp))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "head":
            self.in_head = True
        if tag == "body":
            self.in_head = False
        if tag == "style":
            self._add(tag, "inline <style> element")
        elif tag in _FOREIGN_TAGS:
            self._add(tag, "element never rendered by our templates", csp=False)
        if tag == "meta" and not self.in_head:
            self._add(tag, "meta outside <head>", csp=False)
        values = dict(attrs)
        if tag == "script":
            src = values.get("src") or ""
            if not src:
                self._add(tag, "inline script (no src)")
            elif not src.startswith("/static/"):
                self._add(tag, f"script from outside our static files ({src!r})", csp=False)
        for name, value in attrs:
            if name.startswith("on"):
                self._add(tag, f"event handler attribute {name}={value!r}")
            if name == "style":
                self._add(tag, f"style attribute {value!r}")
            if name in _URL_ATTRS and value and _BAD_URL.match(_CONTROL_OR_SPACE.sub("", value)):
                self._add(tag, f"{name} with a script URL {value!r}")
            if value:
                self.text.append(value)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self.in_head = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@dataclass
class Audit:
    findings: list[Finding]
    text: str

    @property
    def csp_findings(self) -> list[Finding]:
        """What a strict CSP (no inline script, handler or style) would block or need an exception for."""
        return [finding for finding in self.findings if finding.csp]

    def shows(self, marker: str) -> bool:
        return marker.lower() in self.text.lower()


def audit_html(html: str) -> Audit:
    parser = _Auditor()
    parser.feed(html)
    parser.close()
    return Audit(parser.findings, "\n".join(parser.text))
