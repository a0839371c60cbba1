"""The operations of ``/api/v1/``: thin handlers that check the scope, parse the input strictly,
ask one selector of ``registry_app.gate`` and present its answer."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from registry_app.api import params
from registry_app.api import schemas as s
from registry_app.api.audit import note
from registry_app.api.auth import require_scope
from registry_app.api.errors import ApiError
from registry_app.api.present import (
    check_out,
    group_out,
    latest_out,
    package_out,
    package_summary_out,
    skipped_out,
)
from registry_app.gate.answers import check_package, latest_deployable
from registry_app.gate.registry import group_page, package_metrics, package_page
from registry_app.mirror.lookups import find_package
from registry_app.models import ApiToken

__all__ = ["gate", "registry"]

GATE = ApiToken.Scope.GATE.value
REGISTRY = ApiToken.Scope.REGISTRY.value
_ERRORS = {400: s.ErrorOut, 401: s.ErrorOut, 403: s.ErrorOut, 404: s.ErrorOut, 429: s.ErrorOut}

gate = Router(tags=["deploy gate"])
registry = Router(tags=["registry"])


# --------------------------------------------------------------------------------------------- gate


@gate.get(
    "/groups/{group}/approved/latest",
    response={200: s.LatestOut, **_ERRORS, 404: s.NotDeployableOut},
    summary="The newest deployable version of a group",
    description=(
        "The newest version that is Approved in the registry and whose dashboard evidence is current. "
        "Newer Approved versions that are refused (approved outside the dashboard, content changed since "
        "review, revoked, ...) are listed under `skipped` with their reasons. 404 `no_deployable_version` "
        "when none qualifies (its body lists what was skipped), `group_not_found` when there is no such group. "
        "Scope `read:gate`."
    ),
    operation_id="latest_approved",
)
def latest_approved(request: HttpRequest, group: str, source: str | None = None) -> s.LatestOut:
    caller = require_scope(request, GATE)
    name, source_name = params.group_name(group), params.source(source)
    answer = latest_deployable(caller.user, group_name=name, source_name=source_name)
    if answer is None:
        raise ApiError(404, "group_not_found", f"There is no model package group {name}.", skipped=[])
    skipped = [k.version for k in answer.skipped]
    if answer.found is None:
        note(request, deployable=False, skipped=skipped)
        refused = f" {len(skipped)} Approved version(s) were refused; see skipped." if skipped else ""
        raise ApiError(
            404,
            "no_deployable_version",
            f"No version of {name} is Approved with current evidence.{refused}",
            skipped=[k.model_dump(mode="json") for k in skipped_out(answer.skipped)],
            truncated=answer.truncated,
        )
    found = answer.found
    note(request, deployable=True, version=found.evidence.version, package_id=found.package_id, skipped=skipped)
    return latest_out(found, answer.skipped)


@gate.get(
    "/packages/check",
    response={200: s.CheckOut, **_ERRORS},
    summary="May this package be deployed?",
    description=(
        "For a gate step that already has a model package ARN: `deployable`, the `reasons` when it is not "
        "(stable codes), and the evidence. 404 `package_not_found` when the dashboard does not know the ARN. "
        "Scope `read:gate`."
    ),
    operation_id="check_package",
)
def check(request: HttpRequest, arn: str | None = None) -> s.CheckOut:
    caller = require_scope(request, GATE)
    assessment = check_package(caller.user, params.arn(arn))
    if assessment is None:
        raise ApiError(404, "package_not_found", "The dashboard knows no model package with this ARN.")
    note(
        request,
        deployable=assessment.deployable,
        reasons=[r.code for r in assessment.reasons],
        package_id=assessment.package_id,
    )
    return check_out(assessment)


# --------------------------------------------------------------------------------------------- registry


@registry.get(
    "/groups/",
    response={200: s.GroupPageOut, **_ERRORS},
    summary="Model package groups",
    description="Groups by name, keyset-paginated (`limit`, `cursor`). Scope `read:registry`.",
    operation_id="list_groups",
)
def groups(
    request: HttpRequest, source: str | None = None, limit: str | None = None, cursor: str | None = None
) -> s.GroupPageOut:
    caller = require_scope(request, REGISTRY)
    page = group_page(
        caller.user, after=params.group_cursor(cursor), limit=params.limit(limit), source_name=params.source(source)
    )
    return s.GroupPageOut(
        items=[group_out(g) for g in page.items], next_cursor=params.encode_group_cursor(page.next_key)
    )


@registry.get(
    "/groups/{group}/packages/",
    response={200: s.PackagePageOut, **_ERRORS},
    summary="Versions of a group",
    description=(
        "Newest first, keyset-paginated (`limit`, `cursor`). `status`: Approved, Rejected or "
        "PendingManualApproval; `since`: registered at or after this ISO-8601 date or time (UTC when no "
        "offset). Scope `read:registry`."
    ),
    operation_id="list_packages",
)
def packages(
    request: HttpRequest,
    group: str,
    source: str | None = None,
    status: str | None = None,
    since: str | None = None,
    limit: str | None = None,
    cursor: str | None = None,
) -> s.PackagePageOut:
    caller = require_scope(request, REGISTRY)
    found, page = package_page(
        caller.user,
        group_name=params.group_name(group),
        source_name=params.source(source),
        after_version=params.package_cursor(cursor),
        limit=params.limit(limit),
        status=params.status(status),
        since=params.since(since),
    )
    if found is None:
        raise ApiError(404, "group_not_found", f"There is no model package group {group}.")
    return s.PackagePageOut(
        items=[s.PackageSummaryOut(**package_summary_out(p)) for p in page.items],
        next_cursor=params.encode_package_cursor(page.next_key),
    )


@registry.get(
    "/packages/{group}/{version}",
    response={200: s.PackageOut, **_ERRORS},
    summary="One version",
    description="A version as the registry has it (deployability: `/packages/check`). Scope `read:registry`.",
    operation_id="get_package",
)
def package(request: HttpRequest, group: str, version: str, source: str | None = None) -> s.PackageOut:
    caller = require_scope(request, REGISTRY)
    name, number = params.group_name(group), params.version(version)
    found = find_package(caller.user, group_name=name, version=number, source_name=params.source(source))
    if found is None:
        raise ApiError(404, "package_not_found", f"There is no version {number} of {name}.")
    note(request, package_id=found.pk)
    metrics = package_metrics(found)
    found.headline_candidates = [m for m in metrics if not m.facet]  # type: ignore[attr-defined]
    return package_out(found, metrics)
