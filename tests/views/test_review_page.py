"""The review page: policy checklist, sign-offs, comparison with the approved version, charts,
differences from the previous version, push states, the sign-off panel, escaping and query counts."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry_app.models import ApprovalPolicy, ModelPackage, PushOutbox, SignOff
from tests.factories import EvaluationReportFactory, MetricFactory, ModelCardFactory
from tests.views.test_review_support import (
    XSS,
    ago,
    client_for,
    failed_push,
    make_user,
    package_in_state,
    persona_user,
    signoff_row,
    url,
)

pytestmark = pytest.mark.django_db

ROC = {"x": [0.0, 0.1, 0.3, 1.0], "y": [0.0, 0.6, 0.85, 1.0], "x_label": "False positive rate", "y_label": "TPR"}
PR = {"x": [0.0, 0.5, 1.0], "y": [1.0, 0.9, 0.6], "x_label": "Recall", "y_label": "Precision"}
MATRIX = {"labels": ["no default", "default"], "matrix": [[880, 20], [35, 65]]}


def page(user: Any, package: ModelPackage) -> str:
    response = client_for(user).get(url("package_detail", package))
    assert response.status_code == 200
    return response.content.decode()


def section(body: str, element_id: str) -> str:
    """The HTML of one ``<section id=...>`` (or ``<div id=...>``) block."""
    match = re.search(rf'<(section|div|details)[^>]* id="{element_id}"', body)
    assert match, f"no #{element_id}"
    tag = match.group(1)
    end = body.index(f"</{tag}>", match.end())
    # Nested blocks of the same tag: extend to the matching close.
    depth = body.count(f"<{tag}", match.end(), end)
    while depth:
        nxt = body.index(f"</{tag}>", end + 1)
        depth += body.count(f"<{tag}", end, nxt) - 1
        end = nxt
    return body[match.start() : end]


@pytest.fixture
def strict_policy() -> ApprovalPolicy:
    return ApprovalPolicy.objects.create(
        name="strict",
        is_default=True,
        spec={
            "name": "strict",
            "gates": ["auc >= 0.85", "f1 >= 0.8", "DPPL <= 0.1"],
            "require_card_approved": True,
            "sla_hours": 48,
        },
    )


# --------------------------------------------------------------------------------------------- checklist


def test_checklist_shows_every_gate_and_the_card_check(strict_policy: ApprovalPolicy) -> None:
    package = package_in_state("pending", model_card=None, embedded_card_status="Draft")
    MetricFactory(report=package.reports.get(), name="f1", value=0.7)
    review = section(page(persona_user("viewer"), package), "review")

    assert 'Policy <span class="strong">strict</span> · review SLA 48 h' in review
    rows = re.findall(r'<tr class="gate-row gate-(\w+)">\s*<th scope="row"[^>]*>([^<]+)</th>', review)
    assert rows == [
        ("pass", "auc &gt;= 0.85"),
        ("fail", "f1 &gt;= 0.8"),
        ("missing", "DPPL &lt;= 0.1"),
        ("fail", "Model card approved"),
    ]
    text = html.unescape(review)
    assert "auc = 0.90 ≥ 0.85" in text
    assert "f1 = 0.70 is below 0.8" in text
    assert "no metric named DPPL in the evaluation reports" in text
    assert "the model card is Draft; the policy requires it to be Approved" in text
    assert "gate f1 >= 0.8 failed" in text  # the reasons list


def test_checklist_card_check_passes_with_an_approved_card(strict_policy: ApprovalPolicy, registry_source: Any) -> None:
    card = ModelCardFactory(source=registry_source, status="Approved")
    package = package_in_state("pending", model_card=card)
    review = section(page(persona_user("viewer"), package), "review")
    assert re.search(r'<tr class="gate-row gate-pass">\s*<th scope="row">Model card approved</th>', review)
    assert "the model card is Approved" in review


# --------------------------------------------------------------------------------------------- sign-offs


def test_signoffs_by_role_with_who_when_comment_and_stale_ones(strict_policy: ApprovalPolicy) -> None:
    package = package_in_state("pending")
    mlead, fair, comp = (persona_user(n) for n in ("mlead", "fair", "comp"))
    signoff_row(package, mlead, "ml-lead", comment="Holdout AUC checked")
    old = signoff_row(package, fair, "fairness", comment="Bias OK")
    SignOff.objects.filter(pk=old.pk).update(fingerprint="0" * 64)  # content changed since
    signoff_row(package, comp, "compliance", comment="Earlier look", stale_at=ago(hours=1))

    review = section(page(persona_user("viewer"), package), "review")
    roles = html.unescape(review)

    assert re.search(
        r"ml-lead</span>\s*<span class=\"subtle\">1 of 1</span>\s*<span class=\"badge badge-approved\">Signed", review
    )
    assert 'Approved by <span class="strong">mlead</span>' in review
    assert "Holdout AUC checked" in roles
    assert re.search(
        r"fairness</span>\s*<span class=\"subtle\">0 of 1</span>\s*<span class=\"badge badge-pending\">1 more needed",
        review,
    )
    assert re.search(r"compliance</span>\s*<span class=\"subtle\">0 of 1</span>", review)
    assert roles.count("stale — must be redone") >= 4  # per role (2) and in the history (2)
    assert "fairness needs 1 more approval (0 of 1); stale and must be redone" in roles
    # The history table lists all three with their state.
    history = review.split("Sign-off history (3)")[1]
    assert history.count('class="is-stale"') == 2
    assert "Earlier look" in history and "Bias OK" in history


def test_signoff_panel_only_for_those_who_may_sign(strict_policy: ApprovalPolicy) -> None:
    package = package_in_state("pending")

    mine = page(persona_user("mlead"), package)
    assert '<label for="id_comment">Comment</label>' in mine
    assert '<textarea name="comment" id="id_comment"' in mine
    assert re.search(r"<button [^>]*value=\"approve\"[^>]*>Approve</button>", mine)
    assert re.search(r"<button [^>]*value=\"reject\"[^>]*>Reject</button>", mine)
    assert 'You sign as <span class="strong">ml-lead</span>.' in mine

    for name in ("viewer", "nobody", "staff"):
        body = page(persona_user(name), package)
        assert 'name="decision"' not in body, name
        assert "You hold none of the roles policy" in html.unescape(body)

    decided = package_in_state("approved", version=2)
    body = html.unescape(page(persona_user("fair"), decided))
    assert 'name="decision"' not in body
    assert "was already decided" in body


# --------------------------------------------------------------------------------------------- comparison


def test_metrics_compared_with_the_approved_version() -> None:
    baseline = package_in_state("approved", version=1)
    MetricFactory(report=baseline.reports.get(), name="false_positive_rate", value=0.05)
    MetricFactory(report=baseline.reports.get(), name="calibration_slope", value=1.0)
    package = package_in_state("pending", version=2)  # auc 0.90 as well
    report = package.reports.get()
    report.metrics.filter(name="auc").update(value=0.93)
    MetricFactory(report=report, name="false_positive_rate", value=0.08)
    MetricFactory(report=report, name="calibration_slope", value=1.1)
    MetricFactory(report=report, name="new_metric", value=3.0)

    comparison = section(page(persona_user("viewer"), package), "comparison")

    assert 'Baseline: <a href="/packages/credit-risk/1/?source=prod-eu">v1</a>, currently Approved' in comparison
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(
            r'<td>(?:<abbr class="mono"[^>]*>|<span class="mono">)([^<]+)</(?:abbr|span)>'
            r'(?:<div class="subtle">[^<]*</div>)?</td>(.*?)</tr>',
            comparison,
            flags=re.S,
        )
    }
    auc = rows["auc"]
    assert re.search(r'<td class="num">0.93</td>\s*<td class="num">0.9</td>', auc)
    # Arrow, plain decimal and word; a sentence for screen readers; colour is only the class.
    assert '<span class="delta delta-better"><span aria-hidden="true">↑ +0.03 better</span>' in auc
    assert "increased by 0.03, better (higher is better)" in auc
    assert '<div class="subtle">Area under the ROC curve</div>' in comparison  # the full name, visibly
    assert 'href="/groups/credit-risk/compare/?versions=1,2&amp;source=prod-eu">Compare side by side</a>' in comparison
    fpr = rows["false_positive_rate"]
    assert '<span class="delta delta-worse"><span aria-hidden="true">↑ +0.03 worse</span>' in fpr  # lower is better
    slope = rows["calibration_slope"]  # unknown direction: the change, but no verdict
    assert '<span class="delta delta-changed"><span aria-hidden="true">↑ +0.1</span>' in slope
    assert "no better or worse direction" in slope
    assert re.search(r'<td class="num">3</td>\s*<td class="num">—</td>', rows["new_metric"])  # no baseline


def test_comparison_without_an_approved_version() -> None:
    package = package_in_state("pending")
    comparison = section(page(persona_user("viewer"), package), "comparison")
    assert "No approved version in this group to compare with" in comparison


# --------------------------------------------------------------------------------------------- charts


def test_charts_render_when_the_report_has_curves_and_a_confusion_matrix() -> None:
    package = package_in_state("pending")
    EvaluationReportFactory(
        package=package,
        slot="ModelQuality.Constraints",
        curves={"roc": ROC, "precision_recall": PR},
        confusion_matrix=MATRIX,
    )
    body = page(persona_user("viewer"), package)
    reports = section(body, "reports")

    assert reports.count('<svg class="chart chart-curve"') == 2
    assert 'aria-label="ROC curve"' in reports
    assert 'aria-label="Precision–recall curve"' in reports
    assert '<polyline class="chart-line chart-line-current"' in reports
    assert "Confusion matrix (rows: actual, columns: predicted)" in reports
    assert re.search(r'<td class="num[^"]*">880<span class="matrix-pct">', reports) and "no default" in reports


def test_no_charts_without_curves() -> None:
    package = package_in_state("pending")
    assert '<svg class="chart"' not in page(persona_user("viewer"), package)


# --------------------------------------------------------------------------------------------- diff


def test_differences_from_the_previous_version() -> None:
    package_in_state(
        "rejected",
        version=1,
        customer_metadata={"GitCommitSha": "aaa111", "owner": "risk", "MLEngineerApproved": "true"},
    )
    package = package_in_state("pending", version=2, customer_metadata={"GitCommitSha": "bbb222", "owner": "risk"})

    diff = html.unescape(section(page(persona_user("viewer"), package), "diff"))

    assert "v1</a> → v2" in diff
    assert re.search(
        r"Reproducibility: GitCommitSha</th>\s*<td[^>]*><span class=\"diff-before\">aaa111</span></td>\s*"
        r"<td[^>]*><span class=\"diff-after\">bbb222</span>",
        diff,
    )
    assert "Model data URL" in diff and "s3://ml-artifacts/credit-risk/1/model.tar.gz" in diff
    assert "MLEngineerApproved" not in diff  # role flags are not differences in what was reviewed
    assert "owner" not in diff


def test_first_version_has_no_previous() -> None:
    package = package_in_state("pending")
    assert "This is the first version of the group" in page(persona_user("viewer"), package)


# --------------------------------------------------------------------------------------------- pushes


def test_push_states_attempts_errors_and_conflicts() -> None:
    package = package_in_state("pending")
    for state in ("pending", "sending", "sent"):
        failed_push(package, state=state, attempts=1, last_error="")
    failed_push(package, state=PushOutbox.State.FAILED, attempts=4, last_error="ValidationException: bad flag")
    failed_push(
        package,
        state=PushOutbox.State.CONFLICT,
        attempts=1,
        last_error="Not written: the registry shows Rejected by alice",
        conflict_detail={"found_status": "Rejected", "last_modified_by": "alice", "expected_status": "Pending"},
    )

    pushes = section(page(persona_user("viewer"), package), "pushes")

    for state, label in (("pending", "Pending"), ("sending", "Sending"), ("sent", "Sent"), ("failed", "Failed")):
        assert f'<span class="badge push-{state}">{label}</span>' in pushes
    assert '<span class="badge push-conflict">Conflict</span>' in pushes
    assert "4 attempts" in pushes
    assert "ValidationException: bad flag" in pushes
    assert "Not written: the registry shows Rejected by alice" in pushes
    assert "&quot;found_status&quot;: &quot;Rejected&quot;" in pushes
    assert "Retry push" not in pushes  # not staff

    staff = section(page(persona_user("staff"), package), "pushes")
    assert staff.count(">Retry push</button>") == 2  # the failed and the conflicting push


def test_no_push_yet() -> None:
    package = package_in_state("pending")
    assert "Nothing was sent to the registry for this version yet." in page(persona_user("viewer"), package)


# --------------------------------------------------------------------------------------------- escaping


def test_hostile_text_is_escaped_everywhere(strict_policy: ApprovalPolicy, registry_source: Any) -> None:
    card = ModelCardFactory(
        source=registry_source,
        status="Draft",
        content={"model_overview": {"model_description": f"desc {XSS}", "model_owner": XSS}},
    )
    package_in_state("approved", version=1, customer_metadata={"GitCommitSha": f"old{XSS}"})
    package = package_in_state(
        "pending", version=2, model_card=card, customer_metadata={"GitCommitSha": f"new{XSS}", XSS: XSS}
    )
    MetricFactory(report=package.reports.get(), name=f"auc{XSS}", value=0.5, facet=XSS)
    signoff_row(package, persona_user("mlead"), "ml-lead", comment=f"comment {XSS}")
    rejecter = make_user(f"eve{XSS}", "fairness")
    signoff_row(package, rejecter, "fairness", decision="reject", comment=f"no {XSS}", stale_at=ago(minutes=5))
    failed_push(package, last_error=f"error {XSS}", conflict_detail={XSS: XSS})

    body = page(persona_user("staff"), package)

    assert "<script>alert(1)" not in body
    for fragment in (
        "comment &lt;script&gt;",  # sign-off comment
        "no &lt;script&gt;",
        "eve&lt;script&gt;",  # a username
        "desc &lt;script&gt;",  # card field
        "auc&lt;script&gt;",  # metric name (reports and comparison)
        "error &lt;script&gt;",  # push error
        "new&lt;script&gt;",  # diff value
    ):
        assert fragment in body, fragment


def test_hostile_comment_posted_through_the_form_is_escaped(django_capture_on_commit_callbacks: Any) -> None:
    package = package_in_state("pending")
    client = client_for(persona_user("fair"))
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            url("signoff", package), {"decision": "reject", "comment": XSS}, headers={"HX-Request": "true"}
        )

    body = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert(1)" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<script>alert(1)" not in client.get(url("package_detail", package)).content.decode()


# --------------------------------------------------------------------------------------------- queries


def _count(client: Any, target: str) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(target)
    assert response.status_code == 200
    return len(ctx.captured_queries), [q["sql"] for q in ctx.captured_queries]


def _group(name: str, versions: int, signers: list[Any]) -> ModelPackage:
    """``versions`` versions (v1 approved, the rest pending), the newest signed by every signer."""
    for version in range(1, versions + 1):
        package = package_in_state("approved" if version == 1 else "pending", group_name=name, version=version)
        failed_push(package)
    for user in signers:
        signoff_row(package, user, "ml-lead", comment="ok")
    return package


@pytest.mark.parametrize("persona", ["mlead", "staff", "viewer"])
def test_review_page_query_count_is_constant(persona: str) -> None:
    user = persona_user(persona)
    small = _group("small", 2, [make_user("s-0", "ml-lead"), make_user("s-1", "ml-lead")])
    large = _group("large", 30, [make_user(f"l-{i}", "ml-lead") for i in range(30)])
    busy = large.reports.get()
    for i in range(20):
        MetricFactory(report=busy, name=f"m{i}")
    client = client_for(user)

    few = _count(client, url("package_detail", small))
    many = _count(client, url("package_detail", large))

    assert few[0] == many[0], f"{few[0]} queries for 2 versions, {many[0]} for 30:\n" + "\n".join(many[1])
    # 18 without a sign-off role (no queue counts to compute); one of them is the Provenance section's.
    assert many[0] <= 24, "\n".join(many[1])


def test_archive_confirmation_query_count_is_constant() -> None:
    client = client_for(persona_user("comp"))
    for version in range(1, 3):
        package_in_state("pending", group_name="small", version=version)
    for version in range(1, 31):
        failed_push(package_in_state("pending", group_name="large", version=version))

    few = _count(client, reverse("registry:group_archive", args=["small"]))
    many = _count(client, reverse("registry:group_archive", args=["large"]))

    assert few[0] == many[0], "\n".join(many[1])
