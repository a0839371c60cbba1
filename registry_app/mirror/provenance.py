"""Training provenance, mirrored in the package pass: the training job of every package, the processing
jobs around it, and its lineage graph.

``mirror_provenance(ctx, arns)`` is called by the package pass after each batch it applied. It looks
only at packages whose provenance inputs changed (``provenance_mapping.inputs_hash``: metadata, model
data URLs, source algorithms, card, data version; not the approval status) or whose last check failed,
so an incremental sync of unchanged packages costs nothing, and:

1. walks each package's lineage (``mirror.lineage``: ListArtifacts + QueryLineage, about three calls);
2. describes the artifacts the mirror has never described (their source URI never changes);
3. resolves the training job (lineage, GeneratedBy, model data URL, card; ``provenance_mapping.choose``);
4. describes each *distinct* job not yet mirrored, or mirrored unfinished, or mirrored with an error:
   a finished job is never described again, however many packages name it;
5. writes jobs, data locations, graph and package links in one transaction (no AWS call inside).

AWS calls run on a bounded pool of ``SYNC_THREADS`` threads, counted in the run's ``aws_calls`` like
every other call. A job that cannot be described is stored with its error (``missing`` when AWS says
it does not exist) and the package syncs regardless; nothing here raises into the package pass.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from registry_app.aws import lineage as aws_lineage
from registry_app.aws.errors import AwsError, NotFoundError
from registry_app.mirror import lineage
from registry_app.mirror import provenance_mapping as pm
from registry_app.mirror.context import SyncContext
from registry_app.models import (
    JobData,
    LineageEntity,
    ModelPackage,
    PackageTraining,
    ProcessingJob,
    RegistrySource,
    TrainingJob,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
TRAINING, PROCESSING = "training", "processing"


@dataclass
class _RunState:
    """What one sync run learnt that later batches reuse."""

    query_refused: bool = False
    lineage_unavailable: str = ""
    described: set[tuple[str, str]] = field(default_factory=set)  # (kind, job name) described this run


_RUNS: weakref.WeakKeyDictionary[SyncContext, _RunState] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class _Due:
    package: ModelPackage
    card: Any
    inputs: str


@dataclass
class _Answer:
    record: dict[str, Any] | None
    error: str = ""
    code: str = ""
    missing: bool = False


def mirror_provenance(ctx: SyncContext, arns: Iterable[str]) -> None:
    """The package pass's hook (after each applied batch). Never raises: a failure is a run error."""
    try:
        _mirror(ctx, [arn for arn in arns if arn])
    except Exception as exc:  # noqa: BLE001 - provenance must never fail the package sync
        log.exception("provenance of %s failed", ctx.source.name)
        ctx.error("provenance", f"{type(exc).__name__}: {exc}")


def _mirror(ctx: SyncContext, arns: list[str]) -> None:
    due = due_packages(ctx.source, arns)
    if not due:
        return
    state = _RUNS.setdefault(ctx, _RunState())
    source, account = ctx.source, ctx.source.account_id
    own = [d for d in due if not account or lineage.package_account(d.package) == account]
    walks = _walk_all(ctx, state, own)
    known = lineage.known_sources(walks, {d.package.pk: d.package.raw or {} for d in due})
    to_describe = lineage.undescribed_artifacts(source, walks, known)
    artifacts = _pool(ctx, lambda arn: _call(aws_lineage.describe_artifact, ctx, arn), to_describe)
    described = {arn: a.record for arn, a in zip(to_describe, artifacts, strict=True) if a.record is not None}
    failed = {arn: a.error for arn, a in zip(to_describe, artifacts, strict=True) if a.record is None}
    if described:
        ctx.count("lineage_artifacts_described", len(described))
    described.update(known)

    choices: dict[int, tuple[pm.Candidate | None, str, list[pm.Candidate]]] = {}
    for item in due:
        candidates = pm.job_candidates(item.package.raw or {}, card_content=item.card)
        walk = walks.get(item.package.pk)
        if walk is not None:
            candidates = _lineage_candidates(walk) + candidates
        chosen, note = pm.choose(candidates, account)
        choices[item.package.pk] = (chosen, note, candidates)
    training = {c.name for c, _, _ in choices.values() if c is not None and (not c.account or c.account == account)}
    processing = {name for walk in walks.values() for _, name in walk.job_components(PROCESSING)}
    wanted = [(TRAINING, n) for n in sorted(_jobs_due(TrainingJob, source, training, state, TRAINING))]
    wanted += [(PROCESSING, n) for n in sorted(_jobs_due(ProcessingJob, source, processing, state, PROCESSING))]
    answers = dict(zip(wanted, _pool(ctx, lambda job: _describe_job(ctx, *job), wanted), strict=True))
    state.described.update(wanted)
    _count_jobs(ctx, answers)
    with transaction.atomic():
        _store_jobs(source, answers)
        entities = lineage.store_walks(source, walks, described, failed) if walks else {}
        _link_entities(source, entities)
        _store_links(due, walks, choices, entities, account)


# --------------------------------------------------------------------------------------------- what is due


def due_packages(source: RegistrySource, arns: list[str]) -> list[_Due]:
    """The packages of ``arns`` whose provenance inputs changed since the last check, never checked,
    or whose last check failed (lineage unreadable, job not described for a reason other than absence)."""
    if not arns:
        return []
    packages = list(
        ModelPackage.objects.filter(source=source, arn__in=arns, deleted_at__isnull=True)
        .select_related("model_card")
        .only("id", "arn", "raw", "customer_metadata", "model_card__content")
    )
    links = {
        link.package_id: link
        for link in PackageTraining.objects.filter(package__in=packages).select_related("training_job")
    }
    due = []
    for package in packages:
        card = package.model_card.content if package.model_card is not None else _embedded_card(package.raw)
        inputs = pm.inputs_hash(package.raw or {}, card)
        link = links.get(package.pk)
        job = link.training_job if link is not None else None
        if (
            link is None
            or link.content_hash != inputs
            or link.lineage_status == lineage.ERROR
            or (job is not None and not job.missing and (job.error or not job.finished))
        ):
            due.append(_Due(package, card, inputs))
    return due


def _embedded_card(raw: Any) -> Any:
    return ((raw or {}).get("ModelCard") or {}).get("ModelCardContent")


def _jobs_due(
    model: type[TrainingJob] | type[ProcessingJob], source: RegistrySource, names: set[str], state: _RunState, kind: str
) -> set[str]:
    """Names never mirrored, or mirrored unfinished or with an error other than absence; never twice a run."""
    names = {n for n in names if pm.JOB_NAME_RE.fullmatch(n) and (kind, n) not in state.described}
    if not names:
        return set()
    settled = {
        name
        for name, status, error, missing in model.objects.filter(source=source, name__in=names).values_list(
            "name", "status", "error", "missing"
        )
        if missing or (not error and status in ("Completed", "Failed", "Stopped"))
    }
    return names - settled


# --------------------------------------------------------------------------------------------- AWS, on the pool


def _pool(ctx: SyncContext, fn: Callable[[T], R], items: list[T]) -> list[R]:
    if not items:
        return []
    threads = max(1, min(settings.SYNC_THREADS, len(items)))
    if threads == 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"provenance-{ctx.source.name}") as pool:
        return list(pool.map(fn, items))


def _call(fn: Callable[..., dict[str, Any]], ctx: SyncContext, *args: Any) -> _Answer:
    try:
        return _Answer(fn(ctx.client, *args))
    except NotFoundError as exc:
        return _Answer(None, str(exc), exc.code, missing=True)
    except AwsError as exc:
        return _Answer(None, str(exc), exc.code)


def _describe_job(ctx: SyncContext, kind: str, name: str) -> _Answer:
    fn = aws_lineage.describe_training_job if kind == TRAINING else aws_lineage.describe_processing_job
    return _call(fn, ctx, name)


def _walk_all(ctx: SyncContext, state: _RunState, due: list[_Due]) -> dict[int, lineage.Walk]:
    if state.lineage_unavailable or not due:
        return {}

    def walk(item: _Due) -> lineage.Walk | Exception:
        try:
            try:
                return lineage.walk_package(ctx.client, item.package.arn, use_query=not state.query_refused)
            except lineage.QueryRefused:
                state.query_refused = True
                return lineage.walk_package(ctx.client, item.package.arn, use_query=False)
        except lineage.LineageUnavailable as exc:
            return exc

    results = _pool(ctx, walk, due)
    walks: dict[int, lineage.Walk] = {}
    for item, result in zip(due, results, strict=True):
        if isinstance(result, Exception):
            if not state.lineage_unavailable:
                state.lineage_unavailable = str(result)
                ctx.error("lineage", f"ML Lineage Tracking cannot be read; provenance continues without it: {result}")
            walks[item.package.pk] = lineage.Walk(lineage.ERROR, error=str(result))
            continue
        walks[item.package.pk] = result
        if result.status != lineage.NO_ARTIFACT:  # "no lineage" is the common case for older packages
            ctx.count(f"lineage_{result.status}")
    if state.query_refused:
        ctx.count("lineage_query_fallback")
    return walks


def _lineage_candidates(walk: lineage.Walk) -> list[pm.Candidate]:
    """The nearest training job upstream of the package's artifact."""
    if walk.status != lineage.WALKED:
        return []
    depth = pm.relations(walk.root_arn, walk.edges, walk.vertices)
    jobs = [
        (depth.get(arn, ("", 99))[1], name)
        for arn, name in walk.job_components(TRAINING)
        if depth.get(arn, ("", 0))[0] == "ancestor"
    ]
    return [pm.Candidate("lineage", name) for _, name in sorted(jobs)[:1]]


def _count_jobs(ctx: SyncContext, answers: dict[tuple[str, str], _Answer]) -> None:
    for (kind, name), answer in answers.items():
        if answer.record is not None:
            ctx.count(f"{kind}_jobs_described")
        elif answer.missing:
            ctx.count(f"{kind}_jobs_missing")
        else:
            ctx.count(f"{kind}_jobs_failed")
            ctx.error(f"{kind} job {name}", answer.error)


# --------------------------------------------------------------------------------------------- storing


def _store_jobs(source: RegistrySource, answers: dict[tuple[str, str], _Answer]) -> None:
    """Upsert the described jobs and replace their data rows, in a few statements per kind; a failed
    describe records the error and keeps whatever was known before."""
    now = timezone.now()
    for kind, model, key in ((TRAINING, TrainingJob, "training_job"), (PROCESSING, ProcessingJob, "processing_job")):
        mapper = pm.training_job_fields if kind == TRAINING else pm.processing_job_fields
        mine = {name: answer for (k, name), answer in answers.items() if k == kind}
        if not mine:
            continue
        existing = {job.name: job for job in model.objects.filter(source=source, name__in=list(mine))}
        data: dict[str, list[pm.DataRow]] = {}
        changed: list[Any] = []
        created: list[Any] = []
        for name, answer in mine.items():
            if answer.record is not None:
                values, data[name] = mapper(answer.record)
            else:
                values = {"error": answer.error[:4000], "error_code": answer.code[:64], "missing": answer.missing}
            values["described_at"] = now
            job = existing.get(name)
            if job is None:
                created.append(model(source=source, name=name, **values))
                continue
            for field_name, value in values.items():
                setattr(job, field_name, value)
            changed.append(job)
        model.objects.bulk_create(created, batch_size=500)
        fields = sorted({f for name, a in mine.items() for f in _fields_of(a, mapper)})
        if changed:
            model.objects.bulk_update(changed, fields, batch_size=200)
        ids = dict(model.objects.filter(source=source, name__in=list(data)).values_list("name", "pk"))
        JobData.objects.filter(**{f"{key}_id__in": list(ids.values())}).delete()
        JobData.objects.bulk_create(
            [
                JobData(
                    **{f"{key}_id": ids[name]},
                    direction=row.direction,
                    name=row.name[:256],
                    s3_uri=row.s3_uri,
                    data_type=row.data_type[:32],
                    details=row.details,
                )
                for name, rows in data.items()
                for row in rows
            ],
            batch_size=500,
        )


def _fields_of(answer: _Answer, mapper: Callable[..., Any]) -> list[str]:
    if answer.record is not None:
        return [*mapper(answer.record)[0], "described_at"]
    return ["error", "error_code", "missing", "described_at"]


def _link_entities(source: RegistrySource, entities: dict[str, LineageEntity]) -> None:
    """Point each job's trial component at its mirrored job row (one bulk UPDATE per kind)."""
    for kind, model, key in ((TRAINING, TrainingJob, "training_job"), (PROCESSING, ProcessingJob, "processing_job")):
        components = [e for e in entities.values() if e.job_kind == kind and getattr(e, f"{key}_id") is None]
        if not components:
            continue
        rows = dict(
            model.objects.filter(source=source, name__in={e.job_name for e in components}).values_list("name", "pk")
        )
        linked = [e for e in components if e.job_name in rows]
        for entity in linked:
            setattr(entity, f"{key}_id", rows[entity.job_name])
        LineageEntity.objects.bulk_update(linked, [f"{key}_id"], batch_size=500)


LINK_FIELDS = (
    "training_job_id",
    "job_name",
    "resolved_from",
    "candidates",
    "note",
    "training_data_version",
    "lineage_root",
    "lineage_status",
    "lineage_error",
    "content_hash",
    "checked_at",
)


def _store_links(
    due: list[_Due],
    walks: dict[int, lineage.Walk],
    choices: dict[int, tuple[pm.Candidate | None, str, list[pm.Candidate]]],
    entities: dict[str, LineageEntity],
    account: str,
) -> None:
    """Write each package's PackageTraining (one query to read them, one bulk INSERT, one bulk UPDATE)."""
    now = timezone.now()
    names = {c.name for c, _, _ in choices.values() if c is not None}
    source = due[0].package.source_id if due else None
    rows = dict(TrainingJob.objects.filter(source_id=source, name__in=names).values_list("name", "pk"))
    existing = {link.package_id: link for link in PackageTraining.objects.filter(package__in=[d.package for d in due])}
    created, changed = [], []
    for item in due:
        package = item.package
        chosen, note, candidates = choices[package.pk]
        walk = walks.get(package.pk)
        foreign = chosen is not None and bool(chosen.account and account and chosen.account != account)
        if walk is None and account and lineage.package_account(package) != account:
            note = (note + " " if note else "") + "The package is shared from another account: its lineage is there."
        values = {
            "training_job_id": rows.get(chosen.name) if chosen is not None and not foreign else None,
            "job_name": chosen.name if chosen is not None else "",
            "resolved_from": chosen.source if chosen is not None else PackageTraining.ResolvedFrom.NONE,
            "candidates": [c.as_dict() for c in candidates],
            "note": note,
            "training_data_version": str((package.customer_metadata or {}).get("TrainingDataS3VersionId") or "")[:256],
            "lineage_root": entities.get(walk.root_arn) if walk is not None and walk.root_arn else None,
            "lineage_status": walk.status if walk is not None else "",
            "lineage_error": (walk.error if walk is not None else "")[:4000],
            "content_hash": item.inputs,
            "checked_at": now,
        }
        link = existing.get(package.pk)
        if link is None:
            created.append(PackageTraining(package=package, **values))
            continue
        for field_name, value in values.items():
            setattr(link, field_name, value)
        changed.append(link)
    PackageTraining.objects.bulk_create(created, batch_size=500)
    PackageTraining.objects.bulk_update(changed, list(LINK_FIELDS), batch_size=200)
