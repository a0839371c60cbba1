"""The stored review state follows every writer: the sync (moto), sign-offs, pushes, decisions,
policies, cards and groups; the nightly check finds and fixes what a writer missed.

After each step ``exact()`` re-derives every row from scratch and demands no difference.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db.models.signals import post_migrate

from registry_app.mirror.execute import sync_source
from registry_app.mirror.reconcile import RegistrySync, apply_package_record
from registry_app.models import ApprovalPolicy, ModelCard, ModelPackage, PushOutbox, ReviewState, ReviewStateCheck
from registry_app.models.registry import ApprovalStatus
from registry_app.review import on_sync
from registry_app.review.decisions import group_archive, package_revoke
from registry_app.review.push import push_retry
from registry_app.review.queue import queue_counts, queue_for_user
from registry_app.review.queue_state import review_state_forget, review_state_refresh, review_state_verify
from registry_app.review.signoffs import signoff_create
from tests import aws_helpers as h
from tests.review.conftest import Outbox, Registry, make_user

pytestmark = pytest.mark.django_db


def exact() -> None:
    check = review_state_verify(fix=False)
    assert check.differences == 0, check.detail


def row(package: ModelPackage) -> ReviewState | None:
    return ReviewState.objects.filter(package=package).first()


def sign(outbox: Outbox, user: Any, package: ModelPackage, role: str, decision: str = "approve") -> Any:
    with outbox.capture(execute=True):
        return signoff_create(
            user=user, package_id=package.pk, role=role, decision=decision, comment="no" if decision == "reject" else ""
        )


# --------------------------------------------------------------------------------------------- the sync


def test_the_sync_fills_the_rows_of_pending_packages(registry: Registry) -> None:
    pending, pending2 = registry.package("pending"), registry.package("pending2")
    assert set(ReviewState.objects.values_list("package_id", flat=True)) == {pending.pk, pending2.pk}
    state = row(pending)
    assert state is not None
    assert (state.group_name, state.source_name, state.version) == ("credit-risk", "prod", pending.version)
    assert state.group_tags == {"RiskTier": "High"}
    assert state.missing_roles == ["ml-lead", "fairness", "compliance"] and state.outcome == "Pending"
    assert state.policy_name == "default" and state.sla_hours == 72
    exact()


def test_a_status_set_elsewhere_takes_the_package_out(registry: Registry) -> None:
    h.set_status(registry.sm, registry.arns["pending2"], "Approved")
    registry.sync()
    assert row(registry.package("pending2")) is None
    h.set_status(registry.sm, registry.arns["pending2"], "PendingManualApproval")
    registry.sync()
    assert row(registry.package("pending2")) is not None
    exact()


def test_group_tags_choose_the_policy_and_the_rows_follow(registry: Registry) -> None:
    ApprovalPolicy.objects.create(
        name="low-risk", tag_key="RiskTier", tag_value="Low", spec={"required_roles": {"ml-lead": 1}, "sla_hours": 5}
    )
    assert row(registry.package("pending")).policy_name == "default"  # type: ignore[union-attr]
    group_arn = registry.package("pending").group.arn
    registry.sm.add_tags(ResourceArn=group_arn, Tags=[{"Key": "RiskTier", "Value": "Low"}])
    registry.sync()
    state = row(registry.package("pending"))
    assert state is not None
    assert (state.policy_name, state.sla_hours, state.missing_roles) == ("low-risk", 5, ["ml-lead"])
    assert state.group_tags == {"RiskTier": "Low"}
    exact()


def test_reports_stored_by_the_sync_refresh_the_row(registry: Registry, outbox: Outbox, personas: Any) -> None:
    package = registry.package("pending")
    sign(outbox, personas["fair"], package, "fairness")
    before = row(package)
    assert before is not None and before.signers == f"|{personas['fair'].pk}|"
    record = json.loads(json.dumps(registry.describe("pending"), default=str))
    record["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] = "s3://ml-artifacts/credit/1/evaluation-v2.json"
    registry.sm.update_model_package(
        ModelPackageArn=registry.arns["pending"],
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties=record["CustomerMetadataProperties"],
    )
    apply_package_record(registry.source, record)  # the push's refresh: reports are the next sync's
    exact()
    after = row(package)
    assert after is not None and after.fingerprint != before.fingerprint and after.signers == "|"
    assert "fairness" in after.missing_roles


def test_vanished_packages_leave(registry: Registry) -> None:
    package = registry.package("pending")
    syncer = RegistrySync(registry.source, None, None)  # type: ignore[arg-type]
    syncer._mark_packages_deleted([package.pk])
    assert row(package) is None
    exact()


def test_a_card_status_change_reaches_the_card_check(aws: None, db: None) -> None:
    sm, s3 = h.clients()
    h.create_group(sm, "carded")
    sm.create_model_card(
        ModelCardName="carded-card", Content=json.dumps({"model_overview": {}}), ModelCardStatus="Draft"
    )
    h.create_package(sm, "carded", metadata={"ModelCardName": "carded-card"})
    source = registry_source()
    ApprovalPolicy.objects.create(
        name="cards", is_default=True, spec={"required_roles": {"ml-lead": 1}, "require_card_approved": True}
    )
    sync_source(source, mode="full")
    package = ModelPackage.objects.get()
    assert package.model_card is not None
    lead = make_user("lead", "ml-lead")
    signoff_create(user=lead, package_id=package.pk, role="ml-lead", decision="approve", comment="")
    state = row(package)
    assert state is not None and (state.outcome, state.missing_roles) == ("Pending", [])  # the card blocks
    sm.update_model_card(ModelCardName="carded-card", ModelCardStatus="Approved")
    sync_source(source, mode="endpoints")
    assert ModelCard.objects.get().status == "Approved"
    exact()


def registry_source() -> Any:
    from registry_app.models import RegistrySource

    return RegistrySource.objects.create(name="cards", region=h.REGION)


# --------------------------------------------------------------------------------------------- the services


def test_signoffs_decide_and_the_push_takes_the_package_out(
    registry: Registry, outbox: Outbox, personas: dict[str, Any]
) -> None:
    package = registry.package("pending")
    sign(outbox, personas["mlead"], package, "ml-lead")
    assert row(package).missing_roles == ["fairness", "compliance"]  # type: ignore[union-attr]
    assert queue_counts(personas["fair"]) == {"fairness": 2}
    sign(outbox, personas["fair"], package, "fairness")
    sign(outbox, personas["comp"], package, "compliance")
    state = row(package)
    assert state is not None and (state.status, state.outcome, state.missing_roles) == ("Approved", "Approved", [])
    exact()
    outbox.drain()  # delivered; the mirror refresh sees Approved
    assert registry.package("pending").approval_status == ApprovalStatus.APPROVED
    assert row(package) is None
    exact()


def test_a_rejection_waits_for_nobody(registry: Registry, outbox: Outbox, personas: dict[str, Any]) -> None:
    package = registry.package("pending")
    sign(outbox, personas["fair"], package, "fairness", decision="reject")
    state = row(package)
    assert state is not None and (state.outcome, state.missing_roles) == ("Rejected", [])
    assert package.pk not in [i.package_id for i in queue_for_user(personas["mlead"])]
    assert package.pk in [i.package_id for i in queue_for_user(personas["mlead"], tab="all")]
    exact()


def test_a_conflicting_push_and_its_retry(registry: Registry, outbox: Outbox, personas: dict[str, Any]) -> None:
    package = registry.package("pending")
    for name, role in (("mlead", "ml-lead"), ("fair", "fairness"), ("comp", "compliance")):
        sign(outbox, personas[name], package, role)
    h.set_status(registry.sm, registry.arns["pending"], "Rejected")  # someone else, meanwhile
    h.set_status(registry.sm, registry.arns["pending"], "PendingManualApproval")
    registry.sm.update_model_package(ModelPackageArn=registry.arns["pending"], ModelApprovalStatus="Rejected")
    outbox.drain()
    decision = PushOutbox.objects.get(package=package, kind=PushOutbox.Kind.DECISION)
    assert decision.state == PushOutbox.State.CONFLICT
    exact()  # the conflict undid the effective status, and the mirror refresh took it out
    staff = make_user("ops", is_staff=True)
    h.set_status(registry.sm, registry.arns["pending"], "PendingManualApproval")
    registry.sync()
    assert row(package) is not None
    with outbox.capture(execute=True):
        push_retry(user=staff, push_id=decision.pk)
    assert row(package).outcome == "Approved"  # type: ignore[union-attr]
    exact()


def test_revocation_and_archive(registry: Registry, outbox: Outbox, personas: dict[str, Any]) -> None:
    with outbox.capture(execute=True):
        package_revoke(user=personas["comp"], package_id=registry.package("approved").pk, justification="risk")
    exact()
    with outbox.capture(execute=True):
        group_archive(user=personas["comp"], group_id=registry.package("pending").group_id, justification="retired")
    assert set(ReviewState.objects.values_list("outcome", flat=True)) == {"Rejected"}
    exact()


def test_policy_edits_refresh_the_rows_they_touch(registry: Registry) -> None:
    policy = ApprovalPolicy.objects.create(
        name="strict", group_name="credit-risk", spec={"required_roles": {"compliance": 2}, "sla_hours": 10}
    )
    assert set(ReviewState.objects.values_list("policy_name", "sla_hours")) == {("strict", 10)}
    assert row(registry.package("pending")).missing_roles == ["compliance"]  # type: ignore[union-attr]
    policy.spec = {"required_roles": {"fairness": 1, "ml-lead": 1}, "sla_hours": 20}
    policy.save()
    # (PostgreSQL's jsonb does not keep the spec's key order: compare as a set.)
    assert sorted(row(registry.package("pending")).missing_roles) == ["fairness", "ml-lead"]  # type: ignore[union-attr]
    exact()
    policy.delete()
    assert set(ReviewState.objects.values_list("policy_name", flat=True)) == {"default"}
    exact()


def test_a_renamed_source_renames_its_rows(registry: Registry) -> None:
    registry.source.name = "prod-eu"
    registry.source.save()
    assert set(ReviewState.objects.values_list("source_name", flat=True)) == {"prod-eu"}
    exact()


def test_role_grants_need_no_row_and_show_at_once(registry: Registry) -> None:
    user = make_user("newcomer")
    assert queue_counts(user) == {} and queue_for_user(user) == []
    computed = set(ReviewState.objects.values_list("computed_at", flat=True))
    user.groups.add(Group.objects.get_or_create(name="fairness")[0])
    user = type(user).objects.get(pk=user.pk)  # a new request: roles read again
    assert queue_counts(user) == {"fairness": 2}
    assert [i.signable_roles for i in queue_for_user(user)] == [["fairness"], ["fairness"]]
    assert set(ReviewState.objects.values_list("computed_at", flat=True)) == computed


# --------------------------------------------------------------------------------------------- the check


def test_the_nightly_check_counts_and_fixes_differences(registry: Registry, client: Any, settings: Any) -> None:
    settings.METRICS_TOKEN = "review-state-test-token"  # with DEBUG off /metrics needs one
    package = registry.package("pending")
    ReviewState.objects.filter(package=package).update(missing_roles=["nobody"])
    review_state_forget([registry.package("pending2").pk])  # a row lost
    dry = review_state_verify(fix=False)
    assert dry.differences == 2
    assert {(d["package_id"], d["kind"]) for d in dry.detail} == {
        (package.pk, "different"),
        (registry.package("pending2").pk, "missing"),
    }
    assert row(package).missing_roles == ["nobody"]  # type: ignore[union-attr]
    fixed = review_state_verify(fix=True)
    assert fixed.differences == 2 and fixed.checked == 2
    exact()
    from registry_app.tasks import verify_review_state_task

    assert verify_review_state_task.apply().get() == 0
    body = client.get("/metrics", headers={"Authorization": "Bearer review-state-test-token"}).content.decode()
    assert "governance_review_state_differences 0.0" in body
    assert ReviewStateCheck.objects.count() == 4


def test_migrate_fills_the_table_from_existing_rows(registry: Registry) -> None:
    from django.apps import apps

    from registry_app.review.receivers import fill_after_migrate

    review_state_forget(list(ReviewState.objects.values_list("package_id", flat=True)))

    class Applied:
        app_label, name = "registry_app", "0005_review_state"

    class Other:
        app_label, name = "registry_app", "0004_audit_ingest_indexes"

    assert any("review_state_fill_after_migrate" in str(key) for key, *_ in post_migrate.receivers)
    sender = apps.get_app_config("registry_app")
    fill_after_migrate(sender, plan=[(Other(), False)])  # a later migrate: nothing to fill
    assert ReviewState.objects.count() == 0
    fill_after_migrate(sender, plan=[(Applied(), False)])
    assert ReviewState.objects.count() == 2
    exact()


def test_refresh_of_packages_not_under_review_writes_nothing(registry: Registry) -> None:
    approved = registry.package("approved")
    stats = review_state_refresh([approved.pk, 10**9])
    assert stats.changed == 0 and row(approved) is None
    on_sync.packages_vanished([])  # nothing to do, no error


def test_the_embedded_sqlite_broker_is_polled_every_tenth_of_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's broker: a final sign-off reaches the registry in two hops (flags push, then the
    decision push it unblocks), each waiting for a poll; a Redis broker leaves kombu alone."""
    from celery import Celery
    from kombu.transport import sqlalchemy

    from governance.celery import SQLITE_BROKER_POLL_SECONDS, _poll_the_embedded_broker_often

    monkeypatch.setattr(sqlalchemy.Transport, "polling_interval", 1.0)
    _poll_the_embedded_broker_often(Celery("prod", broker="redis://127.0.0.1:6379/0"))
    assert sqlalchemy.Transport.polling_interval == 1.0
    demo = Celery("demo", broker="sqla+sqlite:////tmp/broker.sqlite3")
    _poll_the_embedded_broker_often(demo)
    assert sqlalchemy.Transport.polling_interval == SQLITE_BROKER_POLL_SECONDS == 0.1
    assert demo.connection_for_read().transport.polling_interval == 0.1  # what the worker's drain loop waits
