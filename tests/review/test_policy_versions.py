"""Published policy versions (registry_app/review/policy_versions.py and models/policy_versions.py):
immutable rows, which version is in force for a group, labels, and the field-by-field diff."""

from __future__ import annotations

import pytest

from registry_app.models import ApprovalPolicy, PolicyVersion, PolicyVersionImmutable
from registry_app.review.policy_versions import (
    BUILT_IN_LABEL,
    policy_and_version,
    policy_diff,
    spec_digest,
    version_diff,
    version_in_force,
    version_label,
)
from tests.factories import ModelPackageGroupFactory


def test_policy_diff_lists_each_changed_field_in_a_stable_order() -> None:
    old = {
        "name": "high-risk",
        "required_roles": {"ml-lead": 1, "fairness": 1},
        "gates": ["auc >= 0.85"],
        "sla_hours": 48,
        "role_flags": {"ml-lead": "MLEngineerApproved", "fairness": "FairnessApproved"},
    }
    new = {
        "name": "high-risk",
        "required_roles": {"ml-lead": 2},
        "gates": ["auc >= 0.9"],
        "sla_hours": 48,
        "role_flags": {"ml-lead": "MLEngineerApproved"},
        "accept_automated_approvals": {"principals": ["arn:aws:iam::111122223333:role/P*"], "gates_must_pass": True},
    }
    assert policy_diff(old, new) == [
        ("required_roles.fairness", 1, None),
        ("required_roles.ml-lead", 1, 2),
        ("role_flags.fairness", "FairnessApproved", None),
        ("gates", ["auc >= 0.85"], ["auc >= 0.9"]),
        ("accept_automated_approvals.gates_must_pass", None, True),
        ("accept_automated_approvals.principals", None, ["arn:aws:iam::111122223333:role/P*"]),
    ]
    assert policy_diff(new, new) == []
    assert policy_diff(None, {"name": "x", "sla_hours": 5}) == [("name", None, "x"), ("sla_hours", None, 5)]


def test_spec_digest_ignores_key_order() -> None:
    assert spec_digest({"a": 1, "b": {"x": 1, "y": 2}}) == spec_digest({"b": {"y": 2, "x": 1}, "a": 1})
    assert spec_digest({"a": 1}) != spec_digest({"a": 2})


@pytest.mark.django_db
def test_a_version_is_immutable() -> None:
    policy = ApprovalPolicy.objects.create(name="strict", group_name="g", spec={"required_roles": {"compliance": 1}})
    version = PolicyVersion.objects.get(policy=policy)
    assert (version.number, version.label, str(version)) == (1, "strict v1", "strict v1")
    version.spec = {"required_roles": {}}
    with pytest.raises(PolicyVersionImmutable):
        version.save()
    with pytest.raises(PolicyVersionImmutable):
        version.delete()
    with pytest.raises(PolicyVersionImmutable):
        PolicyVersion.objects.filter(pk=version.pk).update(number=7)
    with pytest.raises(PolicyVersionImmutable):
        PolicyVersion.objects.filter(pk=version.pk).delete()
    fresh = PolicyVersion.objects.get(pk=version.pk)
    assert fresh.number == 1 and fresh.spec["required_roles"] == {"compliance": 1}


@pytest.mark.django_db
def test_version_in_force_resolves_as_the_policy_does(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    credit = ModelPackageGroupFactory(name="credit", tags={"RiskTier": "High"})
    fraud = ModelPackageGroupFactory(name="fraud", tags={"RiskTier": "High"})
    other = ModelPackageGroupFactory(name="other", tags={})
    # Nothing stored: the built-in default, no version.
    assert version_in_force(other) is None and version_label(None) == BUILT_IN_LABEL
    default = ApprovalPolicy.objects.create(name="base", is_default=True, spec={"sla_hours": 50})
    high = ApprovalPolicy.objects.create(name="high", tag_key="RiskTier", tag_value="High", spec={"sla_hours": 24})
    named = ApprovalPolicy.objects.create(name="credit-only", group_name="credit", spec={"sla_hours": 12})
    with django_assert_num_queries(1):
        spec, version = policy_and_version(credit)
    assert (spec.name, spec.sla_hours, version_label(version)) == ("credit-only", 12, "credit-only v1")
    assert version is not None and version.policy_id == named.pk
    assert version_label(version_in_force(fraud)) == "high v1"
    assert version_label(version_in_force(other)) == "base v1"
    high.spec = {"sla_hours": 36}
    high.save()
    assert version_label(version_in_force(fraud)) == "high v2"
    assert version_label(version_in_force(credit)) == "credit-only v1"
    default.delete()  # nothing recorded its versions: it may go, and the built-in default applies again
    assert version_in_force(other) is None


@pytest.mark.django_db
def test_version_diff_covers_the_scope() -> None:
    policy = ApprovalPolicy.objects.create(name="p", group_name="a", spec={"sla_hours": 10})
    policy.group_name = "b"
    policy.spec = {"sla_hours": 20}
    policy.save()
    v1, v2 = PolicyVersion.objects.filter(policy=policy).order_by("number")
    assert version_diff(v1, v2) == [("sla_hours", 10, 20), ("group_name", "a", "b")]
    assert ("name", None, "p") in version_diff(None, v1)


@pytest.mark.django_db
def test_the_migration_publishes_a_v1_for_every_existing_policy() -> None:
    import importlib

    from django.apps import apps

    migration = importlib.import_module("registry_app.migrations.0013_policyver_versions")
    # Rows as they were before versions existed (bulk_create sends no signal, so nothing is published).
    ApprovalPolicy.objects.bulk_create(
        [
            ApprovalPolicy(name="base", is_default=True, spec={"sla_hours": 50}),
            ApprovalPolicy(name="broken", group_name="g", spec={"required_roles": {}}),
        ]
    )
    migration.publish_existing(apps, None)
    base = ApprovalPolicy.objects.select_related("current_version").get(name="base")
    assert base.current_version is not None and base.current_version.label == "base v1"
    assert base.current_version.spec["sla_hours"] == 50 and base.current_version.spec["name"] == "base"
    assert base.current_version.digest == spec_digest(base.current_version.spec)
    assert not PolicyVersion.objects.filter(policy__name="broken").exists()  # invalid: not published
    base.save()  # the same content: no v2
    assert base.versions.count() == 1
