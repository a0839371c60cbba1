"""``/lineage/``: impact analysis. Given a data location (``?data=s3://bucket/prefix``), a lineage
artifact (``?artifact=<ARN>``) or a job (``?job=<name or ARN>``), every package it went into, with its
status and the endpoints serving it now; ``&format=csv`` downloads the same list.

Strict parameters: exactly one of the three, each in the form AWS writes it, else 400 (``BadParameter``).
The CSV holds what the page shows to the same people (any active account), with formula-safe cells.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import render
from django.views.decorators.http import require_GET

from registry_app.audit.exports import csv_response
from registry_app.mirror import provenance_mapping as pm
from registry_app.mirror.provenance_selectors import IMPACT_PAGE, ImpactAnswer, impact
from registry_app.views.params import BadParameter, cleaned

TEMPLATE = "registry_app/lineage.html"
KINDS = ("data", "artifact", "job")
COLUMNS = (
    "group",
    "version",
    "source",
    "package_arn",
    "approval_status",
    "deleted",
    "trained_on_it",
    "how",
    "serving_endpoints",
)
# s3://bucket[/key]: a bucket name as S3 allows it, then any key without control characters.
_DATA = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\x00-\x1f\x7f]{0,1000})?")
_ARTIFACT = re.compile(r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:artifact/[A-Za-z0-9._/-]{1,200}")


class ImpactForm(forms.Form):
    data = forms.CharField(required=False, max_length=1024, strip=True, label="Data location (S3 URI or prefix)")
    artifact = forms.CharField(required=False, max_length=256, strip=True, label="Lineage artifact ARN")
    job = forms.CharField(required=False, max_length=256, strip=True, label="Training or processing job")
    format = forms.ChoiceField(required=False, choices=[("", "page"), ("csv", "CSV")])

    def clean_data(self) -> str:
        value = self.cleaned_data.get("data") or ""
        if value and not _DATA.fullmatch(value):
            raise forms.ValidationError("Use an S3 location: s3://bucket or s3://bucket/prefix.")
        return value

    def clean_artifact(self) -> str:
        value = self.cleaned_data.get("artifact") or ""
        if value and not _ARTIFACT.fullmatch(value):
            raise forms.ValidationError("Use a lineage artifact ARN: arn:aws:sagemaker:REGION:ACCOUNT:artifact/ID.")
        return value

    def clean_job(self) -> str:
        value = self.cleaned_data.get("job") or ""
        if value and not (
            pm.JOB_NAME_RE.fullmatch(value)
            or pm.job_from_arn(value, "training-job")
            or pm.job_from_arn(value, "processing-job")
        ):
            raise forms.ValidationError("Use a job name (letters, digits, hyphens; up to 63) or a job ARN.")
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        given = [kind for kind in KINDS if data.get(kind)]
        if len(given) > 1:
            raise forms.ValidationError("Ask about one thing at a time: data, artifact or job.")
        if data.get("format") == "csv" and not given:
            raise forms.ValidationError("A CSV export needs data, artifact or job.")
        return data


@require_GET
@login_required
def lineage(request: HttpRequest) -> HttpResponseBase:
    form = ImpactForm(request.GET)
    values = cleaned(form, title="Impact analysis")
    kind = next((k for k in KINDS if values.get(k)), "")
    answer = impact(request.user, kind=kind, value=values[kind]) if kind else None
    if kind and answer is None:
        raise BadParameter.field("request", "Your account may not read the registry mirror.")
    if values.get("format") == "csv" and answer is not None:
        stem = f"impact-{kind}-{values[kind].rsplit('/', 1)[-1] or values[kind]}"
        return csv_response(COLUMNS, impact_rows(answer), stem)
    context = {"form": form, "kind": kind, "answer": answer, "shown": IMPACT_PAGE}
    return render(request, TEMPLATE, context)


def impact_rows(answer: ImpactAnswer) -> Iterator[dict[str, Any]]:
    for row in answer.rows:
        package = row.package
        yield {
            "group": package.group.name,
            "version": package.version,
            "source": package.group.source.name,
            "package_arn": package.arn,
            "approval_status": package.approval_status,
            "deleted": bool(package.deleted_at),
            "trained_on_it": "yes" if row.trained else "evaluation only",
            "how": "; ".join(row.how),
            "serving_endpoints": "; ".join(
                f"{v.endpoint.name}/{v.variant_name} ({v.weight if v.weight is not None else '?'})"
                for v in row.endpoints
            ),
        }
