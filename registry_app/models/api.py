"""Bearer tokens of the deploy-gate API (``/api/v1/``): one per service account and purpose.

Only a SHA-256 digest of the token is stored; the token itself is shown once, by
``manage.py create_api_token``. ``prefix`` is the token's short visible part, unique, used to find
the row before the digest is compared in constant time. ``registry_app.gate.tokens`` creates,
checks and revokes them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    class Scope(models.TextChoices):
        GATE = "read:gate", "Ask whether a package may be deployed"
        REGISTRY = "read:registry", "Read the mirrored registry (groups, versions)"

    name = models.CharField(max_length=64, help_text="Who uses it, e.g. the pipeline's name")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="api_tokens",
        help_text="The service account the token acts as (audit entries name it)",
    )
    prefix = models.CharField(max_length=16, unique=True, help_text="The token's visible part, for lookup")
    digest = models.CharField(max_length=64, help_text="SHA-256 (hex) of the whole token")
    scopes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires")
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, help_text="Updated at most once a minute")

    class Meta:
        ordering = ["name", "-created_at"]
        verbose_name = "API token"
        constraints = [
            # A name names one live token; a revoked one's name can be reused (rotation).
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(revoked_at__isnull=True), name="one_live_api_token_per_name"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and not self.is_expired
