"""Every AWS operation the adapter calls has a contract test and an IAM action in docs/iam.

The operations are read from ``registry_app/aws/*.py`` with ``ast``: ``_call``/``_pages`` with a
literal service and operation, and direct client method calls (``client.lookup_events``,
``sts.assume_role``) whose name is an operation of a service the adapter uses, mapped to the API
name through botocore's service model.
"""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import botocore.session
from botocore import xform_name

from registry_app.aws.permissions import OPERATIONS, RESOURCES
from registry_app.aws.sagemaker import _snake

ROOT = Path(__file__).resolve().parents[2]
ADAPTER = ROOT / "registry_app" / "aws"
IAM = ROOT / "docs" / "iam"
SERVICES = ("sagemaker", "s3", "sqs", "sts", "cloudtrail")
CONTRACT_MODULES = sorted(p.stem for p in Path(__file__).parent.glob("test_*contracts*.py"))


def _methods() -> dict[str, dict[str, str]]:
    session = botocore.session.get_session()
    return {s: {xform_name(op): op for op in session.get_service_model(s).operation_names} for s in SERVICES}


METHODS = _methods()


def called_operations() -> tuple[set[tuple[str, str]], list[str]]:
    found: set[tuple[str, str]] = set()
    ambiguous: list[str] = []
    for path in sorted(ADAPTER.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr
            args = node.args
            if name in ("_call", "_pages") and len(args) >= 2:
                if all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in args[:2]):
                    found.add((args[0].value, args[1].value))  # type: ignore[union-attr]
                elif [getattr(a, "id", "") for a in args[:2]] != ["service", "operation"]:  # not the plumbing
                    ambiguous.append(f"{path.name}:{node.lineno}: {name}() without literal service and operation")
                continue
            receiver = node.func.value
            if isinstance(receiver, ast.Name) and receiver.id == "self":
                continue  # our own methods (describe_package, get_object, ...)
            owners = [s for s in SERVICES if name in METHODS[s]]
            if len(owners) == 1:
                found.add((owners[0], METHODS[owners[0]][name]))
            elif owners:
                ambiguous.append(f"{path.name}:{node.lineno}: {name}() is an operation of {owners}")
    return found, ambiguous


def contract_operations() -> set[tuple[str, str]]:
    covered: set[tuple[str, str]] = set()
    for module_name in CONTRACT_MODULES:
        module = importlib.import_module(f"tests.aws.{module_name}")
        for value in vars(module).values():
            covered.update(getattr(value, "__contract__", ()))
    return covered


def policy_actions() -> dict[str, dict[str, set[str]]]:
    """file -> action -> resources (or principals, for the trust policy)."""
    out: dict[str, dict[str, set[str]]] = {}
    for path in sorted(IAM.glob("*.json")):
        actions: dict[str, set[str]] = {}
        for statement in json.loads(path.read_text(encoding="utf-8"))["Statement"]:
            assert statement["Effect"] == "Allow", f"{path.name}: only Allow statements"
            names = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            target = statement.get("Resource", statement.get("Principal"))
            targets = (
                target if isinstance(target, list) else [json.dumps(target) if isinstance(target, dict) else target]
            )
            for action in names:
                actions.setdefault(action, set()).update(targets)
        out[path.name] = actions
    return out


def test_the_scan_sees_the_adapter() -> None:
    found, ambiguous = called_operations()
    assert not ambiguous, ambiguous
    # Both forms are found: a literal _call, a _pages, and direct client calls.
    assert {
        ("sagemaker", "DescribeModel"),
        ("sagemaker", "Search"),
        ("cloudtrail", "LookupEvents"),
        ("sts", "AssumeRole"),
    } <= found
    assert all(_snake(op) == xform_name(op) for _, op in found)  # _call's method lookup matches botocore


def test_every_operation_the_adapter_calls_has_a_contract_test() -> None:
    found, _ = called_operations()
    missing = sorted(found - contract_operations())
    assert not missing, f"operations without a contract test (mark one with tests.aws.contracts.contract): {missing}"


def test_every_operation_is_mapped_to_its_iam_actions_and_nothing_stale() -> None:
    found, _ = called_operations()
    assert sorted(found - set(OPERATIONS)) == [], "add these to registry_app/aws/permissions.OPERATIONS"
    assert sorted(set(OPERATIONS) - found) == [], "OPERATIONS lists operations nothing calls"


def test_every_operation_is_covered_by_a_policy_file_and_no_file_grants_more() -> None:
    found, _ = called_operations()
    files = policy_actions()
    granted = {action for actions in files.values() for action in actions}
    needed = {action for op in found for action in OPERATIONS[op]}
    assert sorted(needed - granted) == [], "actions the adapter needs that no docs/iam policy grants"
    assert sorted(granted - needed) == [], "docs/iam grants actions nothing calls"
    assert set(files["trust-policy.json"]) == {"sts:AssumeRole", "sts:SetSourceIdentity"}
    assert set(files["dashboard-identity-policy.json"]) == {"sts:AssumeRole", "sts:SetSourceIdentity"}
    assert set(files["push-policy.json"]) == {"sagemaker:UpdateModelPackage"}
    assert "sagemaker:UpdateModelPackage" not in files["read-only-policy.json"]


def test_the_resources_in_code_are_the_ones_in_the_policy_files() -> None:
    files = policy_actions()
    for action, resources in RESOURCES.items():
        documented = set().union(*(actions.get(action, set()) for actions in files.values()))
        assert documented == set(resources), action


def test_the_trust_policy_requires_the_external_id() -> None:
    statement = json.loads((IAM / "trust-policy.json").read_text(encoding="utf-8"))["Statement"][0]
    assert statement["Condition"]["StringEquals"]["sts:ExternalId"] == "EXTERNAL_ID"
    assert set(statement["Action"]) == {"sts:AssumeRole", "sts:SetSourceIdentity"}
