from __future__ import annotations

from django.apps import AppConfig


class RegistryAppConfig(AppConfig):
    name = "registry_app"
    verbose_name = "SageMaker Model Registry governance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from registry_app.review import receivers  # connects the review state's policy receivers

        receivers.connect(self)
