"""Endpoints and what they serve (endpoint -> config -> model -> package), and the cards-and-endpoints pass.

The pass runs as its own sync mode (``ENDPOINTS``) and as the last step of a full reconciliation.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from registry_app.aws.errors import AwsError, NotFoundError
from registry_app.mirror import mapping as sync
from registry_app.mirror.card_sync import sync_cards
from registry_app.mirror.context import SyncContext
from registry_app.models import Endpoint, EndpointVariant, ModelPackage


def cards_and_endpoints(ctx: SyncContext) -> None:
    """The cards-and-endpoints pass: standalone cards and their links first, then endpoints (whose
    variants point at packages)."""
    ctx.ensure_account()
    ctx.load_groups()
    sync_cards(ctx)
    sync_endpoints(ctx)


def sync_endpoints(ctx: SyncContext) -> None:
    """Mirror every endpoint (re-described only when its status or modification time changed); endpoints
    the listing no longer returns are marked deleted."""
    try:
        summaries = [s for page in ctx.client.iter_endpoint_pages() for s in page]
    except AwsError as exc:
        ctx.error("ListEndpoints", str(exc))
        return
    existing = {e.arn: e for e in Endpoint.objects.filter(source=ctx.source)}
    seen = set()
    for summary in summaries:
        arn = summary.get("EndpointArn")
        if not arn:
            continue
        seen.add(arn)
        endpoint = existing.get(arn)
        modified = sync.parse_time(summary.get("LastModifiedTime"))
        if (
            endpoint is not None
            and endpoint.deleted_at is None
            and endpoint.last_modified_at == modified
            and endpoint.status == (summary.get("EndpointStatus") or "")
        ):
            continue
        try:
            _store_endpoint(ctx, summary, endpoint)
        except (AwsError, sync.RecordError) as exc:
            ctx.error(f"endpoint {summary.get('EndpointName')}", str(exc))
    gone = [e.pk for arn, e in existing.items() if arn not in seen and e.deleted_at is None]
    if gone:
        Endpoint.objects.filter(pk__in=gone).update(deleted_at=timezone.now())
        ctx.count("endpoints_deleted", len(gone))


def _store_endpoint(ctx: SyncContext, summary: dict[str, Any], endpoint: Endpoint | None) -> None:
    name = summary["EndpointName"]
    described = ctx.client.describe_endpoint(name)
    config_name = described.get("EndpointConfigName") or ""
    config = ctx.client.describe_endpoint_config(config_name) if config_name else {}
    models: dict[str, dict[str, Any]] = {}
    for variant in config.get("ProductionVariants") or []:
        model_name = variant.get("ModelName")
        if model_name and model_name not in models:
            try:
                models[model_name] = ctx.client.describe_model(model_name)
            except NotFoundError:
                models[model_name] = {}
    rows = sync.endpoint_variants(config, models)
    # Live weights from DescribeEndpoint override the config's initial weights.
    live = {v.get("VariantName"): v for v in described.get("ProductionVariants") or []}
    for row in rows:
        current = live.get(row["variant_name"]) or {}
        if current.get("CurrentWeight") is not None:
            row["weight"] = current["CurrentWeight"]
        if current.get("CurrentInstanceCount") is not None:
            row["instance_count"] = current["CurrentInstanceCount"]
    packages = {
        p.arn: p.pk for p in ModelPackage.objects.filter(arn__in=[r["package_arn"] for r in rows if r["package_arn"]])
    }
    with transaction.atomic():
        fields = {
            "name": name,
            "status": str(described.get("EndpointStatus") or ""),
            "config_name": config_name,
            "created_at": sync.parse_time(described.get("CreationTime")),
            "last_modified_at": sync.parse_time(described.get("LastModifiedTime")),
            "deleted_at": None,
        }
        if endpoint is None:
            endpoint = Endpoint.objects.create(source=ctx.source, arn=described["EndpointArn"], **fields)
        else:
            for key, value in fields.items():
                setattr(endpoint, key, value)
            endpoint.save()
        endpoint.variants.all().delete()
        EndpointVariant.objects.bulk_create(
            EndpointVariant(endpoint=endpoint, package_id=packages.get(row["package_arn"]), **row) for row in rows
        )
    ctx.count("endpoints_updated")
