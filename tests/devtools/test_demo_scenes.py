"""The demo's facts, end to end: seed the fake, sync it as `make demo` does, play the scenes, sync again.

What the README's tour promises must be there: versions past their review SLA and due soon, a registrant
the dashboard refuses, an outside approval on /audit/bypasses/, a failing gate, a revoked version, a
push conflict."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from registry_app.devtools import demo_scenes
from registry_app.devtools.demo_seed import seed_registry
from registry_app.mirror.execute import sync_source
from registry_app.models import Decision, ModelPackage, OutsideDecision, PushOutbox, RegistrySource, SyncRun
from registry_app.models.review_state import ReviewState
from registry_app.review.policies import policy_for_group
from registry_app.review.policy.basics import SignOffNotAllowed
from registry_app.review.policy.evaluate import evaluate
from registry_app.review.signoffs import signoff_create
from registry_app.review.state import is_registrant, metric_observations

pytestmark = pytest.mark.django_db(transaction=True)


def _sync(mode: str) -> None:
    for source in RegistrySource.objects.all():
        run = sync_source(source, mode=mode)
        assert run.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL), run.error


@pytest.fixture
def demo(aws: None, settings: Any) -> Any:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    seed_registry(region="eu-west-1", second_region="us-east-1", bucket="acme-ml-artifacts", cloudtrail_bucket="")
    out = io.StringIO()
    call_command("create_demo_users", "--password", "demo-governance", stdout=out)
    call_command("create_demo_policies", stdout=out)
    for name, region in (("acme-prod", "eu-west-1"), ("acme-us", "us-east-1")):
        RegistrySource.objects.create(name=name, region=region)
    _sync(SyncRun.Mode.FULL)
    summary = demo_scenes.stage_demo_scenes()
    _sync(SyncRun.Mode.INCREMENTAL)
    return summary


def _package(group: str, version: int) -> ModelPackage:
    return ModelPackage.objects.select_related("group").get(group__name=group, version=version)


def test_the_demo_shows_every_feature(demo: Any) -> None:
    from django.contrib.auth import get_user_model

    scenes = [line for line in demo.done if not line.startswith("findings:")]  # demo_findings' lines
    assert len(scenes) == 3 and not demo.skipped, demo.lines()
    now = timezone.now()

    # SLA: overdue and due-soon versions in the queue (pending, undecided).
    pending = ReviewState.objects.filter(outcome="Pending", status="PendingManualApproval")
    assert pending.filter(due_at__lt=now).count() >= 2
    assert pending.filter(due_soon_at__lte=now, due_at__gte=now).count() >= 2
    assert pending.filter(due_soon_at__gt=now).exists()
    assert len({p.created_at.date() for p in ModelPackage.objects.all()}) > 10  # spread over months

    # A registrant the dashboard refuses: the mlead login registered churn-propensity v5 in Studio.
    mlead = get_user_model().objects.get(username="mlead")
    churn_v5 = _package("churn-propensity", 5)
    assert is_registrant(churn_v5, mlead)
    with pytest.raises(SignOffNotAllowed) as refused:
        signoff_create(user=mlead, package_id=churn_v5.pk, role="ml-lead", decision="approve", comment="mine")
    assert refused.value.code == "registrant"

    # An outside approval, made while the dashboard watched.
    outside = OutsideDecision.objects.get(package=_package("churn-propensity", 4))
    assert outside.to_status == "Approved" and outside.from_status == "PendingManualApproval"
    assert _package("churn-propensity", 4).approval_status == "Approved"

    # A failing gate: credit-default-xgb v6, auc 0.842 < 0.85.
    credit_v6 = _package("credit-default-xgb", 6)
    result = evaluate(
        policy_for_group(credit_v6.group),
        signoffs=[],
        metrics=metric_observations(credit_v6),
        card_status=None,
        current_fingerprint="",
    )
    auc = next(g for g in result.gates if "auc" in str(g.gate))
    assert auc.status == "fail" and auc.observed == pytest.approx(0.842, abs=0.0005)

    # A revoked version: the push reached the registry and the mirror shows it.
    churn_v1 = _package("churn-propensity", 1)
    revocation = Decision.objects.get(package=churn_v1, kind=Decision.Kind.REVOCATION)
    assert PushOutbox.objects.get(decision=revocation).state == PushOutbox.State.SENT
    assert churn_v1.approval_status == "Rejected"
    assert not OutsideDecision.objects.filter(package=churn_v1).exists()  # the dashboard's own push explains it

    # A push conflict: the owner rejected demand-forecast v4 in Studio while its approval was on its way.
    demand_v4 = _package("demand-forecast", 4)
    decision_push = PushOutbox.objects.get(package=demand_v4, kind=PushOutbox.Kind.DECISION)
    assert decision_push.state == PushOutbox.State.CONFLICT and decision_push.target_status == "Approved"
    assert demand_v4.approval_status == "Rejected"


def test_the_demo_has_open_overdue_and_closed_findings_and_an_approval_with_conditions(demo: Any) -> None:
    from registry_app.models import Finding, SignOff

    assert len([line for line in demo.done if line.startswith("findings:")]) == 3, demo.lines()
    today = timezone.localdate()
    open_ = Finding.objects.filter(state__in=Finding.OPEN_STATES)
    assert open_.filter(blocks_approval=True).exists()
    assert open_.filter(due_date__lt=today).exists()
    assert Finding.objects.filter(state=Finding.State.CLOSED).exclude(evidence_url="").exists()
    conditioned = SignOff.objects.filter(conditions__isnull=False, decision="approve").distinct()
    assert conditioned.count() == 1
    assert conditioned.get().package.approval_status == "PendingManualApproval"  # compliance decides it live
    assert open_.filter(package__approval_status="Approved").exists()  # an approved model with an open finding
    blocked = Finding.objects.get(blocks_approval=True).package
    assert "blocks approval" in ReviewState.objects.get(package=blocked).blocked_by


def test_scenes_run_twice_change_nothing(demo: Any) -> None:
    pushes = PushOutbox.objects.count()
    again = demo_scenes.stage_demo_scenes()
    assert not again.done and len(again.skipped) == 3
    assert PushOutbox.objects.count() == pushes
    assert dt.timedelta(0) <= timezone.now() - OutsideDecision.objects.latest("observed_at").observed_at


def test_the_trail_records_the_studio_calls_and_the_outside_decisions_name_who(aws: None, settings: Any) -> None:
    from registry_app.audit.ingest import ingest_source
    from registry_app.devtools.demo_seed import CLOUDTRAIL_BUCKET
    from registry_app.models import CloudTrailEvent, TrailDigest, TrailLogFile

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    seed_registry(region="eu-west-1", second_region="us-east-1", bucket="acme-ml-artifacts", now=now)
    out = io.StringIO()
    call_command("create_demo_users", "--password", "demo-governance", stdout=out)
    call_command("create_demo_policies", stdout=out)
    for name, region in (("acme-prod", "eu-west-1"), ("acme-us", "us-east-1")):
        RegistrySource.objects.create(name=name, region=region, cloudtrail_bucket=CLOUDTRAIL_BUCKET)
    _sync(SyncRun.Mode.FULL)
    since = (now - dt.timedelta(days=200)).date()
    for source in RegistrySource.objects.all():
        assert not ingest_source(source, lookup=False, since=since).errors

    summary = demo_scenes.stage_demo_scenes()
    assert len(summary.calls) == 2 and summary.trail_files
    _sync(SyncRun.Mode.INCREMENTAL)
    for source in RegistrySource.objects.all():  # what beat's S3 pass does a few minutes later
        assert not ingest_source(source, lookup=False).errors

    for group, version, person in (("churn-propensity", 4, "lena-fischer"), ("demand-forecast", 4, "james-carter")):
        outside = OutsideDecision.objects.select_related("event").get(package=_package(group, version))
        assert outside.event is not None, (group, version)
        assert outside.event.event_name == "UpdateModelPackage"
        assert person in (outside.actor_name, outside.event.actor_name), (outside.actor_name, outside.event.actor_name)
    assert CloudTrailEvent.objects.filter(event_name="UpdateModelPackage", event_time__gte=now).count() == 2
    # The late files are vouched for by a signed, chained backfill digest: nothing fails validation.
    assert set(TrailLogFile.objects.values_list("state", flat=True)) == {"validated"}
    backfill = TrailDigest.objects.filter(backfill=True)
    assert backfill.exists() and set(backfill.values_list("state", "chain")) == {("valid", "linked")}
    assert not TrailDigest.objects.exclude(state="valid").exists()
