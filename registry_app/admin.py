from __future__ import annotations

from django.contrib import admin

from registry_app import models


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
