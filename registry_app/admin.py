from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from registry_app import models
from registry_app.review.policy import PolicyError, PolicySpec
from registry_app.review.policy_versions import version_diff


@admin.register(models.RegistrySource)
class RegistrySourceAdmin(admin.ModelAdmin):
    list_display = ("name", "region", "account_id", "role_arn", "enabled")
    list_filter = ("enabled", "region")
    fields = (
        "name",
        "region",
        "role_arn",
        "external_id",
        "cloudtrail_bucket",
        "cloudtrail_prefix",
        "events_queue_url",
        "enabled",
        "account_id",
    )
    readonly_fields = ("account_id",)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Mirror rows are written by the sync only; the admin shows them for forensics."""

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[override]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[override]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[override]
        return False


@admin.register(models.ModelPackageGroup)
class GroupAdmin(ReadOnlyAdmin):
    list_display = ("name", "source", "owner_account", "status", "deleted_at")
    search_fields = ("name", "arn")


@admin.register(models.ModelPackage)
class PackageAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "approval_status", "package_status", "created_at", "deleted_at")
    list_filter = ("approval_status", "source")
    search_fields = ("arn",)
    list_select_related = ("group",)


@admin.register(models.SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = ("source", "mode", "trigger", "status", "queued_at", "duration_s")
    list_filter = ("status", "mode", "source")


admin.site.register(models.ModelCard, ReadOnlyAdmin)
admin.site.register(models.EvaluationReport, ReadOnlyAdmin)
admin.site.register(models.Endpoint, ReadOnlyAdmin)
admin.site.register(models.PackageObservation, ReadOnlyAdmin)


# --- governance: policies, sign-offs, decisions, pushes --------------------------------------


class ApprovalPolicyForm(forms.ModelForm):
    """Validates ``spec`` through ``PolicySpec.from_dict`` and stores its normalised form."""

    class Meta:
        model = models.ApprovalPolicy
        fields = ("name", "spec", "is_default", "group_name", "tag_key", "tag_value", "priority")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        spec = cleaned.get("spec")
        if spec is not None:
            data = dict(spec) if isinstance(spec, dict) else spec
            if isinstance(data, dict):
                data.setdefault("name", cleaned.get("name") or "")
            try:
                cleaned["spec"] = PolicySpec.from_dict(data).to_dict()
            except PolicyError as exc:
                self.add_error("spec", str(exc))
        is_default = bool(cleaned.get("is_default"))
        group_name = (cleaned.get("group_name") or "").strip()
        tag_key = (cleaned.get("tag_key") or "").strip()
        if is_default and (group_name or tag_key):
            self.add_error("is_default", "The default policy applies everywhere; leave group name and tag empty.")
        elif not is_default and not (group_name or tag_key):
            self.add_error(
                "group_name", "Say where this policy applies: a group name or a tag (or make it the default)."
            )
        elif group_name and tag_key:
            self.add_error("tag_key", "Use either a group name or a tag, not both.")
        if (cleaned.get("tag_value") or "").strip() and not tag_key:
            self.add_error("tag_value", "A tag value needs a tag key.")
        return cleaned


def _diff_html(diff: list[tuple[str, Any, Any]]) -> SafeString:
    if not diff:
        return format_html('<span class="muted">{}</span>', "no change")
    return format_html(
        "<ul>{}</ul>",
        format_html_join(
            "",
            "<li><code>{}</code>: {} &rarr; {}</li>",
            ((field, _shown(old), _shown(new)) for field, old, new in diff),
        ),
    )


def _shown(value: Any) -> str:
    return "(none)" if value is None else json.dumps(value, ensure_ascii=False)


@admin.register(models.ApprovalPolicy)
class ApprovalPolicyAdmin(admin.ModelAdmin):
    """Every save that changes the spec or scope publishes the next immutable version
    (``review.policy_publish``, from the post_save receiver); versions are listed read-only."""

    form = ApprovalPolicyForm
    list_display = ("name", "version", "is_default", "group_name", "tag_key", "tag_value", "priority", "updated_at")
    list_filter = ("is_default",)
    list_select_related = ("current_version",)
    search_fields = ("name", "group_name", "tag_key", "tag_value")
    readonly_fields = ("version", "published_versions")

    @admin.display(description="Version in force")
    def version(self, obj: models.ApprovalPolicy) -> str:
        return obj.current_version.label if obj.current_version_id else "not published"

    @admin.display(description="Published versions (newest first; what each changed from the one before)")
    def published_versions(self, obj: models.ApprovalPolicy) -> SafeString:
        if obj.pk is None:
            return format_html('<span class="muted">{}</span>', "published when saved")
        versions = list(obj.versions.select_related("published_by").order_by("number"))
        rows = []
        for previous, version in zip([None, *versions], versions, strict=False):
            who = version.published_by.get_username() if version.published_by else "(system)"
            url = reverse("admin:registry_app_policyversion_change", args=[version.pk])
            rows.append(
                (
                    url,
                    version.label,
                    version.published_at.isoformat(),
                    who,
                    version.digest[:12],
                    _diff_html(version_diff(previous, version)),
                )
            )
        return format_html(
            "<table><thead><tr><th>Version</th><th>Published at</th><th>By</th><th>Digest</th><th>Changes</th>"
            "</tr></thead><tbody>{}</tbody></table>",
            format_html_join(
                "",
                '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>',
                reversed(rows),
            ),
        )


@admin.register(models.PolicyVersion)
class PolicyVersionAdmin(ReadOnlyAdmin):
    """Published versions are immutable: shown, never added, changed or deleted here."""

    list_display = ("__str__", "policy", "published_at", "published_by", "short_digest")
    list_filter = ("policy",)
    list_select_related = ("policy", "published_by")
    fields = (
        "policy", "number", "name", "spec", "digest", "is_default", "group_name", "tag_key", "tag_value",
        "priority", "published_at", "published_by", "changes",
    )  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Digest")
    def short_digest(self, obj: models.PolicyVersion) -> str:
        return obj.digest[:12]

    @admin.display(description="Changes from the previous version")
    def changes(self, obj: models.PolicyVersion) -> SafeString:
        previous = obj.policy.versions.filter(number__lt=obj.number).order_by("-number").first()
        return _diff_html(version_diff(previous, obj))


@admin.register(models.SignOff)
class SignOffAdmin(ReadOnlyAdmin):
    list_display = ("package", "user", "role", "decision", "created_at", "policy_version", "stale_at", "stale_reason")
    list_filter = ("role", "decision")
    search_fields = ("package__arn", "user__username")
    list_select_related = ("package__group", "user", "policy_version")


@admin.register(models.Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ("package", "kind", "status", "decided_by", "created_at", "policy_version")
    list_filter = ("kind", "status")
    search_fields = ("package__arn", "description")
    list_select_related = ("package__group", "decided_by", "policy_version")


@admin.register(models.Revalidation)
class RevalidationAdmin(ReadOnlyAdmin):
    list_display = ("package", "outcome", "policy_name", "started_at", "due_at", "completed_at")
    list_filter = ("outcome", "policy_name")
    search_fields = ("package__arn",)
    list_select_related = ("package__group",)


@admin.register(models.RevalidationSignOff)
class RevalidationSignOffAdmin(ReadOnlyAdmin):
    list_display = ("revalidation", "user", "role", "decision", "created_at", "stale_at")
    list_filter = ("role", "decision")
    search_fields = ("revalidation__package__arn", "user__username")
    list_select_related = ("user",)


@admin.register(models.Finding)
class FindingAdmin(ReadOnlyAdmin):
    """Read only: findings change state through the review page's services (audited)."""

    list_display = ("__str__", "package", "severity", "state", "blocks_approval", "owner", "due_date", "raised_at")
    list_filter = ("state", "severity", "blocks_approval")
    search_fields = ("title", "package__arn", "owner__username", "owner_email")
    list_select_related = ("package__group", "owner")


@admin.register(models.PushOutbox)
class PushOutboxAdmin(ReadOnlyAdmin):
    list_display = ("id", "package", "kind", "state", "target_status", "attempts", "created_at", "sent_at")
    list_filter = ("state", "kind")
    search_fields = ("package__arn", "acting_username", "last_error")
    list_select_related = ("package__group",)


# --- audit: the log and CloudTrail are read-only evidence; admin edits of roles and policies are audited ---

from django.contrib.auth import get_user_model  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402

from registry_app.audit import log as audit_service  # noqa: E402


@admin.register(models.AuditLogEntry)
class AuditLogEntryAdmin(ReadOnlyAdmin):
    """Append-only: no add, change or delete, whatever the user's permissions."""

    list_display = ("seq", "created_at", "actor_name", "via", "action", "subject_repr", "package")
    list_filter = ("via", "action")
    search_fields = ("actor_name", "action", "subject_repr", "correlation_id", "hash")
    list_select_related = ("package__group",)
    show_full_result_count = False

    def get_actions(self, request: HttpRequest) -> dict:  # type: ignore[override]
        return {}


@admin.register(models.CloudTrailEvent)
class CloudTrailEventAdmin(ReadOnlyAdmin):
    list_display = ("event_time", "event_name", "actor_name", "resource_name", "package", "via")
    list_filter = ("via", "event_name")
    search_fields = ("=event_id", "=actor_name", "=resource_name")
    list_select_related = ("package__group",)
    show_full_result_count = False  # no COUNT(*) over a million events

    def get_actions(self, request: HttpRequest) -> dict:  # type: ignore[override]
        return {}


@admin.register(models.OutsideDecision)
class OutsideDecisionAdmin(ReadOnlyAdmin):
    list_display = ("package", "from_status", "to_status", "observed_at", "actor_name", "changed_at", "notified_at")
    list_filter = ("to_status",)
    list_select_related = ("package__group",)


@admin.register(models.EndpointDeployment)
class EndpointDeploymentAdmin(ReadOnlyAdmin):
    list_display = ("endpoint_name", "variant_name", "package_arn", "weight", "started_at", "ended_at")
    search_fields = ("=endpoint_name", "package_arn")


class AuditedAdminMixin:
    """Entries written by signals during an admin request name the staff user and ``via=web``."""

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with audit_service.audit_context(actor=request.user, via=models.AuditLogEntry.Via.WEB):
            return super().changeform_view(request, *args, **kwargs)  # type: ignore[misc]

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with audit_service.audit_context(actor=request.user, via=models.AuditLogEntry.Via.WEB):
            return super().delete_view(request, *args, **kwargs)  # type: ignore[misc]

    def changelist_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with audit_service.audit_context(actor=request.user, via=models.AuditLogEntry.Via.WEB):
            return super().changelist_view(request, *args, **kwargs)  # type: ignore[misc]


def _audit_admin_of(model: Any) -> None:
    """Re-register ``model``'s admin with ``AuditedAdminMixin`` in front of its current class."""
    current = type(admin.site.get_model_admin(model))
    admin.site.unregister(model)
    admin.site.register(model, type(f"Audited{current.__name__}", (AuditedAdminMixin, current), {}))


_audit_admin_of(get_user_model())
_audit_admin_of(models.ApprovalPolicy)


# --- the deploy-gate API's tokens: created by `manage.py create_api_token` (shown once), revoked here ---

from django.contrib import messages  # noqa: E402

from registry_app.gate.tokens import token_revoke  # noqa: E402


@admin.register(models.ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """No add (the token must be printed once, by the command) and no delete (audit entries name it)."""

    list_display = ("name", "prefix", "user", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "=prefix", "user__username")
    list_select_related = ("user",)
    exclude = ("digest",)
    actions = ["revoke"]

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.has_perm("registry_app.change_apitoken"))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:  # type: ignore[override]
        return [f.name for f in models.ApiToken._meta.fields if f.name != "digest"]

    @admin.action(description="Revoke the selected API tokens", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        revoked = sum(
            1 for token in queryset.filter(revoked_at__isnull=True) if token_revoke(token, actor=request.user)
        )
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)


# --- notifications: chat and webhook endpoints (secrets stay in the environment, see models/notifications.py) ---

from registry_app.models.notifications import WEBHOOK_KINDS  # noqa: E402


class WebhookEndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=[(kind, label) for kind, label in models.NotificationKind.choices if kind in WEBHOOK_KINDS],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None checked: every event.",
    )

    class Meta:
        model = models.WebhookEndpoint
        fields = (
            "name",
            "format",
            "enabled",
            "url",
            "url_env",
            "secret_env",
            "events",
            "group_name",
            "tag_key",
            "tag_value",
            "role",
        )


@admin.register(models.WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("name", "format", "enabled", "group_name", "tag_key", "role", "variables_set")
    list_filter = ("format", "enabled")
    search_fields = ("name", "group_name", "tag_key", "role")

    @admin.display(boolean=True, description="Variables set")
    def variables_set(self, obj: models.WebhookEndpoint) -> bool:
        """Whether the named environment variables are set in this (web) process; their values are never shown."""
        from registry_app.notifications.webhooks import WebhookError, endpoint_secret, endpoint_url

        try:
            endpoint_url(obj)
            if obj.format == models.WebhookEndpoint.Format.GENERIC:
                endpoint_secret(obj)
        except WebhookError:
            return False
        return True
