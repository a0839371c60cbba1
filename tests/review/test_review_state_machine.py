"""Proof the stored review state stays exact: a hypothesis ``RuleBasedStateMachine`` runs random
sequences of sign-offs, revocations, archives, push deliveries (sent, failed, conflicting) and
retries, registry changes seen by the mirror (status, reviewed content, reports, deletion), policy
edits, role grants, card status and group tag changes. After every step:

* every stored ``ReviewState`` row equals the one derived from scratch (``review_state_verify``);
* for every person, the "mine" tab, each row's ``signable_roles`` and the nav counts equal what
  ``state.verdict`` + ``state.signable_roles`` say package by package (the roles still missing
  that the person may sign), computed here the way the review page does: one package at a time,
  nothing from the table.

The registry is an in-memory stand-in (``FakeRegistry``) that the pushes write to; what it holds
reaches the mirror through the mirror's own ``apply_package_record`` and ``RegistrySync`` code.
Each example runs in a savepoint rolled back at its end.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import logging
from collections import Counter
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import ProtectedError
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from registry_app.aws.errors import AccessDeniedError
from registry_app.mirror.reconcile import RegistrySync, apply_package_record
from registry_app.models import (
    ApprovalPolicy,
    EvaluationReport,
    Metric,
    ModelCard,
    ModelPackage,
    ModelPackageGroup,
    PushOutbox,
    RegistrySource,
    SignOff,
)
from registry_app.permissions import SIGNOFF_ROLES, user_roles
from registry_app.review import on_sync
from registry_app.review.decisions import group_archive, package_revoke
from registry_app.review.policies import policy_for_group
from registry_app.review.policy import SignOffNotAllowed
from registry_app.review.push import PushBlocked, push_execute, push_retry
from registry_app.review.queue import queue_counts, queue_page
from registry_app.review.queue_state import review_state_verify
from registry_app.review.review_rows import under_review
from registry_app.review.signoffs import signoff_create
from registry_app.review.state import (
    effective_status,
    metric_observations,
    package_fingerprint,
    signable_roles,
    signoff_views,
    verdict,
)
from tests.factories import user_context
from tests.personas import make_user

pytestmark = pytest.mark.django_db

ACCOUNT = "111122223333"
REGION = "eu-west-1"
STATUSES = ("PendingManualApproval", "Approved", "Rejected")
GROUPS = ("credit", "churn")
PACKAGES = 4  # two versions per group
PEOPLE = 5  # reviewers whose roles the machine grants and revokes
roles_st = st.sampled_from(SIGNOFF_ROLES)
SEEN: Counter[str] = Counter()  # what the runs did, so the test can show it exercised the interesting paths


def seen(what: str) -> None:
    SEEN[what] += 1
    event(what)


class FakeRegistry:
    """DescribeModelPackage / UpdateModelPackage on records held in memory (what ``push_execute``
    calls), with a switch that makes the next update fail finally."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.deny_next = False
        self.clock = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def tick(self) -> str:
        self.clock += dt.timedelta(seconds=1)
        return self.clock.isoformat()

    def describe_package(self, arn: str) -> dict[str, Any]:
        return copy.deepcopy(self.records[arn])

    def update_package(self, **params: Any) -> None:
        if self.deny_next:
            self.deny_next = False
            raise AccessDeniedError("not authorized", operation="UpdateModelPackage", code="AccessDeniedException")
        record = self.records[params["ModelPackageArn"]]
        for key in ("ModelApprovalStatus", "ApprovalDescription", "CustomerMetadataProperties"):
            if key in params:
                record[key] = copy.deepcopy(params[key])
        record["LastModifiedTime"] = self.tick()


def _record(group: str, version: int, *, registrant: str) -> dict[str, Any]:
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/{version}"
    return {
        "ModelPackageArn": arn,
        "ModelPackageGroupName": group,
        "ModelPackageVersion": version,
        "ModelApprovalStatus": "PendingManualApproval",
        "ModelPackageStatus": "Completed",
        "CreationTime": f"2026-01-0{version}T0{version}:00:00+00:00",
        "CreatedBy": user_context(registrant),
        "InferenceSpecification": {"Containers": [{"Image": f"img:{group}-{version}"}]},
        "CustomerMetadataProperties": {"GitCommitSha": "0000000"},
    }


class ReviewStateMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.savepoint = transaction.savepoint()
        self.registry = FakeRegistry()
        self.source = RegistrySource.objects.create(name=f"fake-{id(self)}", region=REGION, account_id=ACCOUNT)
        self.groups = [
            ModelPackageGroup.objects.create(
                source=self.source,
                name=name,
                arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/{name}",
                owner_account=ACCOUNT,
                tags={"RiskTier": "High"},
            )
            for name in GROUPS
        ]
        self.card = ModelCard.objects.create(
            source=self.source, name="card", arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-card/card", status="Draft"
        )
        # Two roles to start with, so decisions come within a few steps (policy edits change it).
        ApprovalPolicy.objects.create(
            name="policy-default", is_default=True, spec={"required_roles": {"ml-lead": 1, "fairness": 1}}
        )
        self.people = [make_user(f"person-{i}-{id(self)}", SIGNOFF_ROLES[i % 3]) for i in range(PEOPLE)]
        self.compliance = make_user(f"officer-{id(self)}", "compliance")
        self.staff = make_user(f"ops-{id(self)}", is_staff=True)
        self.arns: list[str] = []
        for i in range(PACKAGES):
            record = _record(GROUPS[i % 2], i // 2 + 1, registrant=self.people[i].get_username())
            self.registry.records[record["ModelPackageArn"]] = record
            self.arns.append(record["ModelPackageArn"])
            self._observe(i)
        for i, arn in enumerate(self.arns):  # reports and metrics, as the sync stores them
            package = ModelPackage.objects.get(arn=arn)
            report = EvaluationReport.objects.create(
                package=package, slot="ModelQuality.Statistics", s3_uri=f"s3://b/{i}.json", status="ok", sha256="0" * 64
            )
            Metric.objects.create(report=report, package=package, name="auc", value=0.9, kind="binary_classification")
            on_sync.package_reports_observed(package)
        with transaction.atomic():  # the sync's card pass links the first version of each group
            ModelPackage.objects.filter(arn__in=self.arns[:2]).update(model_card=self.card)
            for arn in self.arns[:2]:
                on_sync.card_link_observed(ModelPackage.objects.get(arn=arn).pk)

    def teardown(self) -> None:
        transaction.savepoint_rollback(self.savepoint)

    # -- helpers ---------------------------------------------------------------------------
    def _package(self, i: int) -> ModelPackage:
        return ModelPackage.objects.get(arn=self.arns[i])

    def _observe(self, i: int) -> None:
        """The mirror applies what the registry holds (a sync, an event, or a push's refresh)."""
        apply_package_record(self.source, self.registry.describe_package(self.arns[i]))

    def _person(self, i: int) -> Any:
        return type(self.people[i]).objects.get(pk=self.people[i].pk)  # a fresh request: roles read again

    # -- reviewers -------------------------------------------------------------------------
    @rule(
        who=st.integers(0, PEOPLE - 1),
        i=st.integers(0, PACKAGES - 1),
        own=st.booleans(),
        role=roles_st,
        reject=st.integers(0, 5),
    )
    def sign(self, who: int, i: int, own: bool, role: str, reject: int) -> None:
        person = self._person(who)
        held = sorted(user_roles(person))
        if own and held:  # mostly a role the person holds, so sign-offs get recorded and decide
            role = held[i % len(held)]
        try:
            result = signoff_create(
                user=person,
                package_id=self._package(i).pk,
                role=role,
                decision="reject" if reject == 0 else "approve",
                comment="no" if reject == 0 else "",
            )
            seen(f"sign-off recorded{', decided ' + result.decision.status if result.decision else ''}")
        except SignOffNotAllowed as exc:
            seen(f"sign-off refused: {exc.code}")

    # Sign-offs and deliveries are what moves a review along: three and two rules' worth of steps.
    sign_again = rule(
        who=st.integers(0, PEOPLE - 1),
        i=st.integers(0, PACKAGES - 1),
        own=st.just(True),
        role=roles_st,
        reject=st.integers(0, 9),
    )(lambda self, **kw: self.sign(**kw))
    sign_once_more = rule(
        who=st.integers(0, PEOPLE - 1),
        i=st.integers(0, PACKAGES - 1),
        own=st.just(True),
        role=roles_st,
        reject=st.integers(0, 9),
    )(lambda self, **kw: self.sign(**kw))

    @rule(i=st.integers(0, PACKAGES - 1))
    def revoke(self, i: int) -> None:
        with contextlib.suppress(SignOffNotAllowed, PermissionDenied, ValueError):
            package_revoke(user=self.compliance, package_id=self._package(i).pk, justification="risk")

    @rule(g=st.integers(0, len(GROUPS) - 1), go=st.integers(0, 3))
    def archive(self, g: int, go: int) -> None:
        if go:  # rarely: it rejects every version of the group
            return
        with contextlib.suppress(SignOffNotAllowed, PermissionDenied, ValueError):
            group_archive(user=self.compliance, group_id=self.groups[g].pk, justification="retired")

    @rule(who=st.integers(0, PEOPLE - 1), role=roles_st, grant=st.booleans())
    def role_change(self, who: int, role: str, grant: bool) -> None:
        group = Group.objects.get_or_create(name=role)[0]
        (self.people[who].groups.add if grant else self.people[who].groups.remove)(group)

    # -- pushes ----------------------------------------------------------------------------
    @rule(pick=st.integers(0, 50), fail=st.integers(0, 4), refresh=st.booleans(), race=st.integers(0, 3))
    def deliver(self, pick: int, fail: int, refresh: bool, race: int) -> None:
        pushes = list(
            PushOutbox.objects.filter(state__in=PushOutbox.CLAIMABLE_STATES)
            .select_related("package")
            .order_by("created_at", "pk")
        )
        if not pushes:
            return
        chosen = pushes[pick % len(pushes)]
        if race == 0 and chosen.kind == PushOutbox.Kind.DECISION:
            # Someone set the status in the registry while the decision was on its way (not yet
            # seen by the mirror): the delivery finds a conflict.
            other = "Approved" if chosen.target_status == "Rejected" else "Rejected"
            self.registry.records[chosen.package.arn]["ModelApprovalStatus"] = other
        self.registry.deny_next = fail == 0
        try:
            push = push_execute(chosen.pk, client=self.registry)  # type: ignore[arg-type]
            seen(f"{push.kind} push {push.state}")
            if refresh and push.state in (PushOutbox.State.SENT, PushOutbox.State.CONFLICT):
                self._observe(self.arns.index(push.package.arn))  # refresh_package_task, right after
        except PushBlocked:
            seen("push blocked by an earlier one")
        self.registry.deny_next = False

    deliver_again = rule(
        pick=st.integers(0, 50), fail=st.integers(0, 4), refresh=st.booleans(), race=st.integers(0, 3)
    )(lambda self, **kw: self.deliver(**kw))

    @rule(pick=st.integers(0, 50))
    def retry(self, pick: int) -> None:
        pushes = list(PushOutbox.objects.filter(state__in=PushOutbox.RETRYABLE_STATES).order_by("created_at", "pk"))
        if pushes:
            push_retry(user=self.staff, push_id=pushes[pick % len(pushes)].pk)

    # -- the registry, seen by the mirror ----------------------------------------------------
    @rule(
        kind=st.sampled_from(("refresh", "status", "content", "report", "vanish")),
        i=st.integers(0, PACKAGES - 1),
        status=st.sampled_from(STATUSES),
        variant=st.integers(0, 2),
    )
    def registry_change(self, kind: str, i: int, status: str, variant: int) -> None:
        """Something changed in the registry and the mirror saw it (a sync, an event, a push's refresh)."""
        record = self.registry.records[self.arns[i]]
        if kind == "status":  # set elsewhere (Studio, a pipeline)
            record["ModelApprovalStatus"] = status
        elif kind == "content":  # reviewed content: current sign-offs become stale
            record["CustomerMetadataProperties"] = {
                **record["CustomerMetadataProperties"],
                "GitCommitSha": f"{variant}" * 7,
            }
        elif kind == "report":  # a report fetched again with other bytes and metrics
            package = self._package(i)
            with transaction.atomic():  # as RegistrySync._apply_batch stores reports, then tells review
                EvaluationReport.objects.filter(package=package).update(sha256=f"{variant}" * 64)
                Metric.objects.filter(package=package).update(value=(0.5, 0.8, 0.9)[variant])
                on_sync.package_reports_observed(package)
            return
        elif kind == "vanish":  # gone from the registry's listing ("refresh" brings it back)
            RegistrySync(self.source, None, self.registry)._mark_packages_deleted([self._package(i).pk])  # type: ignore[arg-type]
            return
        record["LastModifiedTime"] = self.registry.tick()
        self._observe(i)

    @rule(
        card=st.sampled_from(("Draft", "PendingReview", "Approved", "")),
        g=st.integers(0, 1),
        tier=st.sampled_from(("High", "Low")),
    )
    def catalogue_change(self, card: str, g: int, tier: str) -> None:
        """A standalone card's status (as RegistrySync._store_card), else a group's tags (_store_group)."""
        with transaction.atomic():
            if card:
                ModelCard.objects.filter(pk=self.card.pk).update(status=card)
                on_sync.card_stored(ModelCard.objects.get(pk=self.card.pk))
            else:
                ModelPackageGroup.objects.filter(pk=self.groups[g].pk).update(tags={"RiskTier": tier})
                on_sync.group_observed(self.groups[g].pk)

    # -- policies ----------------------------------------------------------------------------
    @rule(
        where=st.sampled_from(("default", "group", "tag")),
        roles=st.dictionaries(roles_st, st.integers(1, 2), min_size=1, max_size=3),
        gate=st.sampled_from(("", "auc >= 0.85")),
        card=st.booleans(),
        sla=st.integers(1, 100),
        delete=st.booleans(),
    )
    def policy_edit(self, where: str, roles: dict[str, int], gate: str, card: bool, sla: int, delete: bool) -> None:
        name = f"policy-{where}"
        if delete:
            for policy in ApprovalPolicy.objects.filter(name=name):
                # The admin deletes instances (signals fire); a policy whose versions a sign-off or
                # decision recorded is refused (its versions are history): it stays as it was.
                with contextlib.suppress(ProtectedError), transaction.atomic():
                    policy.delete()
            return
        spec = {"required_roles": roles, "gates": [gate] if gate else [], "require_card_approved": card}
        spec["sla_hours"] = sla
        place = {"default": {"is_default": True}, "group": {"group_name": "credit"}, "tag": {"tag_key": "RiskTier"}}
        policy = ApprovalPolicy.objects.filter(name=name).first() or ApprovalPolicy(name=name, **place[where])
        policy.spec = spec
        policy.save()

    # -- what must hold after every step ---------------------------------------------------------
    @invariant()
    def stored_rows_are_exact(self) -> None:
        SEEN["steps"] += 1
        check = review_state_verify(fix=False)
        assert check.differences == 0, check.detail

    @invariant()
    def every_queue_is_what_the_verdict_allows(self) -> None:
        expected: dict[int, dict[int, list[str]]] = {}  # person -> package -> roles they may sign
        people = [type(p).objects.get(pk=p.pk) for p in [*self.people, self.compliance]]  # roles read afresh
        for package in ModelPackage.objects.filter(under_review()).select_related("group", "model_card"):
            policy = policy_for_group(package.group)
            state = verdict(
                package,
                policy=policy,
                signoffs=signoff_views(SignOff.objects.filter(package=package).select_related("user")),
                metrics=metric_observations(package),
                fingerprint=package_fingerprint(package, policy=policy)[0],
                status=effective_status(package),
            )
            for person in people:
                # As the queue always offered: the roles still missing that check_can_sign lets them sign.
                wanted = user_roles(person) & set(state.missing_roles)
                allowed = signable_roles(state, package, person, wanted, only_held=True).roles
                if allowed:
                    expected.setdefault(person.pk, {})[package.pk] = allowed
        for person in people:
            mine = queue_page(person, tab="mine", limit=500)
            assert {i.package_id: i.signable_roles for i in mine.items} == expected.get(person.pk, {})
            assert mine.total == len(mine.items)
            counts = queue_counts(person)
            for role, n in counts.items():
                assert n == sum(1 for roles in expected.get(person.pk, {}).values() if role in roles), role
            every = queue_page(person, tab="all", limit=500)
            assert {i.package_id for i in every.items} == set(
                ModelPackage.objects.filter(under_review()).values_list("pk", flat=True)
            )
            assert all(i.age_hours >= 0 for i in every.items)


@pytest.mark.timeout(1200)  # 900 steps, each re-deriving every row: 60-200 s on a busy 2-core box
def test_the_stored_review_state_stays_exact(aws: None, notifications: Any) -> None:
    SEEN.clear()
    run_state_machine_as_test(
        ReviewStateMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=30,
            deadline=None,
            database=None,
            derandomize=True,  # the same sequences on every run (CI), so the coverage check below is stable
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    # The runs reached the paths that move the review state (not only refusals).
    logging.getLogger(__name__).warning("state machine: %s", dict(sorted(SEEN.items())))
    for wanted in ("sign-off recorded, decided", "decision push sent", "decision push conflict"):
        assert any(key.startswith(wanted) for key in SEEN), (wanted, dict(SEEN))
    assert any(key.endswith("push failed") for key in SEEN), dict(SEEN)
