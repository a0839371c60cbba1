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
from registry_app.mirror.package_refs import lookup_arns, package_index, package_ref, resolve_package
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
        except (AwsError, sync.RecordError, KeyError) as exc:
            ctx.error(f"endpoint {summary.get('EndpointName')}", str(exc))
    gone = [e.pk for arn, e in existing.items() if arn not in seen and e.deleted_at is None]
    if gone:
        Endpoint.objects.filter(pk__in=gone).update(deleted_at=timezone.now())
        ctx.count("endpoints_deleted", len(gone))


def _store_endpoint(ctx: SyncContext, summary: dict[str, Any], endpoint: Endpoint | None) -> None:
    """Describe one endpoint, its config and models, and store it with its variants.

    Things deleted under a live endpoint are no failure of the run: a model deleted after deployment
    (SageMaker keeps serving its containers) gives a variant marked ``model_deleted`` that keeps the
    last package known for it; a config deleted likewise keeps the last known variants; an endpoint
    gone since the listing is left to the next listing, which marks it deleted.
    """
    name = summary["EndpointName"]
    try:
        described = ctx.client.describe_endpoint(name)
    except NotFoundError:
        ctx.count("endpoints_vanished_before_describe")
        return
    config_name = described.get("EndpointConfigName") or ""
    try:
        config = ctx.client.describe_endpoint_config(config_name) if config_name else {}
    except NotFoundError:
        config = None  # deleted config: the stored variants are the last known
        ctx.count("endpoint_configs_deleted")
    rows = _variant_rows(ctx, config, endpoint) if config is not None else None
    if rows is not None:
        # Live weights from DescribeEndpoint override the config's initial weights.
        live = {v.get("VariantName"): v for v in described.get("ProductionVariants") or []}
        for row in rows:
            current = live.get(row["variant_name"]) or {}
            if current.get("CurrentWeight") is not None:
                row["weight"] = current["CurrentWeight"]
            if current.get("CurrentInstanceCount") is not None:
                row["instance_count"] = current["CurrentInstanceCount"]
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
        if rows is not None:
            endpoint.variants.all().delete()
            EndpointVariant.objects.bulk_create(EndpointVariant(endpoint=endpoint, **row) for row in rows)
    ctx.count("endpoints_updated")


def _variant_rows(ctx: SyncContext, config: dict[str, Any], endpoint: Endpoint | None) -> list[dict[str, Any]]:
    """The config's variants, each resolved to its package (``package_refs``, the same resolution as the
    deployment history). A model that no longer exists keeps the variant's last known package."""
    models: dict[str, dict[str, Any]] = {}
    deleted: set[str] = set()
    for variant in config.get("ProductionVariants") or []:
        model_name = variant.get("ModelName")
        if model_name and model_name not in models:
            try:
                models[model_name] = ctx.client.describe_model(model_name)
            except NotFoundError:
                models[model_name] = {}
                deleted.add(model_name)
    rows = sync.endpoint_variants(config, models)
    previous = {v.variant_name: v for v in endpoint.variants.all()} if endpoint is not None else {}
    refs = {
        row["variant_name"]: package_ref(row["package_arn"], region=ctx.source.region, account=ctx.source.account_id)
        for row in rows
    }
    index = package_index(ModelPackage.objects.filter(arn__in=lookup_arns(refs.values())).values_list("pk", "arn"))
    for row in rows:
        if row["model_name"] in deleted:
            ctx.count("variant_models_deleted")
            known = previous.get(row["variant_name"])
            same_model = known is not None and known.model_name == row["model_name"]
            row.update(
                model_deleted=True,
                package_arn=known.package_arn if same_model else "",
                package_id=known.package_id if same_model else None,
            )
            continue
        resolved = resolve_package(refs[row["variant_name"]], index)
        row.update(model_deleted=False, package_arn=resolved.arn, package_id=resolved.package_id)
    return rows
