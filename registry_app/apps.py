from __future__ import annotations

from django.apps import AppConfig


class RegistryAppConfig(AppConfig):
    name = "registry_app"
    verbose_name = "SageMaker Model Registry governance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The audit log's append-only guards and signal-written entries hold in every process (web,
        # worker, shell, command), not only in those that happen to import the admin or the log.
        # Imported here: the receivers module needs the models, which are only loaded by now.
        from registry_app.audit.receivers import connect_receivers

        connect_receivers()

        from registry_app.review import receivers  # connects the review state's policy receivers

        receivers.connect(self)
