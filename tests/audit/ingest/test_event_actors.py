"""Actor naming: who made a CloudTrail call, from its ``userIdentity`` (no database, no AWS)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from registry_app.audit.event_actors import actor_of
from registry_app.audit.events import NormalizedEvent, normalize
from tests.audit.ingest import records as r

NOW = dt.datetime(2025, 3, 14, 12, 0, tzinfo=dt.UTC)
PKG = r.arn_package("credit-risk", 7)


def norm(record: dict[str, Any]) -> NormalizedEvent:
    return normalize(record, fallback_time=NOW)


@pytest.mark.parametrize(
    ("identity", "name", "candidates", "kind"),
    [
        (r.iam_user("Alice"), "Alice", ("alice",), "IAMUser"),
        (r.assumed_role(), "MySessionName", ("mysessionname",), "AssumedRole"),
        (
            r.assumed_role("DevRole", "Dev1", source_identity="source-identity-value-set"),
            "source-identity-value-set",
            ("source-identity-value-set",),
            "AssumedRole",
        ),
        (r.studio_user("alice"), "alice", ("alice",), "AssumedRole"),
        # A generic session name says nothing: qualify it with the role.
        (
            r.assumed_role("AmazonSageMaker-ExecutionRole-Risk", "SageMaker"),
            "AmazonSageMaker-ExecutionRole-Risk/SageMaker",
            (),
            "AssumedRole",
        ),
        (
            r.assumed_role("PipelineRole", "botocore-session-1741944412"),
            "PipelineRole/botocore-session-1741944412",
            (),
            "AssumedRole",
        ),
        (r.sso_user("Fairness"), "Fairness", ("fairness",), "AssumedRole"),
        (
            r.sso_user("conor.walsh@acme.example"),
            "conor.walsh@acme.example",
            ("conor.walsh@acme.example",),
            "AssumedRole",
        ),
        (r.identity_center_user(user_name="compliance"), "compliance", ("compliance",), "IdentityCenterUser"),
        (r.identity_center_user("9f0e-1234"), "idc:9f0e-1234", (), "IdentityCenterUser"),
        (r.aws_service("sagemaker.amazonaws.com"), "sagemaker.amazonaws.com", (), "AWSService"),
        ({"type": "Root", "arn": f"arn:aws:iam::{r.ACCOUNT}:root", "accountId": r.ACCOUNT}, "root", (), "Root"),
        (
            {"type": "FederatedUser", "arn": f"arn:aws:sts::{r.ACCOUNT}:federated-user/bob"},
            "bob",
            ("bob",),
            "FederatedUser",
        ),
        (
            {"type": "SAMLUser", "userName": "carol@acme.example", "principalId": "x"},
            "carol@acme.example",
            ("carol@acme.example",),
            "SAMLUser",
        ),
    ],
)
def test_actor_naming(identity: dict[str, Any], name: str, candidates: tuple[str, ...], kind: str) -> None:
    actor = actor_of(identity)
    assert (actor.name, actor.candidates, actor.type) == (name, candidates, kind)


def test_source_identity_is_the_only_candidate_when_present() -> None:
    """A session named ``bob`` with sourceIdentity ``alice`` is alice: never attributed to bob."""
    actor = actor_of(r.assumed_role("Approver", "bob", source_identity="alice"))
    assert actor.name == "alice" and actor.candidates == ("alice",)
    assert actor.arn.endswith("assumed-role/Approver/bob")


def test_identity_center_user_name_from_additional_event_data() -> None:
    rec = r.record("UpdateModelPackage", identity=r.identity_center_user())
    rec["additionalEventData"] = {"UserName": "anyuser"}
    assert norm(rec).actor.name == "anyuser"


def test_odd_identities_never_crash() -> None:
    for identity in (None, "x", [], {}, {"type": "Unknown"}, {"type": "AssumedRole"}, {"sessionContext": "x"}):
        actor = actor_of(identity)
        assert isinstance(actor.name, str)
