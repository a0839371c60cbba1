"""Published approval policies: every change of an ``ApprovalPolicy``'s spec or scope publishes an
immutable ``PolicyVersion`` (``review.policy_publish``); sign-offs and decisions record the version
in force when they were made.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class PolicyVersionImmutable(Exception):
    """A published policy version is never changed or deleted on its own."""


class PolicyVersionQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise PolicyVersionImmutable("published policy versions cannot be changed")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PolicyVersionImmutable("published policy versions cannot be deleted")


class PolicyVersion(models.Model):
    """One published state of an ``ApprovalPolicy``: its spec as published and where it applied.

    Immutable: saving an existing row or deleting one raises ``PolicyVersionImmutable``. A policy's
    versions go only with the policy itself, and only while no sign-off or decision recorded one
    of them (those references are ``PROTECT``): a policy that governed something cannot be deleted.
    """

    policy = models.ForeignKey("registry_app.ApprovalPolicy", on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(help_text="1, 2, 3... per policy")
    name = models.CharField(max_length=128, help_text="The policy's name when published")
    spec = models.JSONField(help_text="PolicySpec.to_dict() as published")
    digest = models.CharField(max_length=64, help_text="sha256 of the canonical spec")
    is_default = models.BooleanField(default=False)
    group_name = models.CharField(max_length=170, blank=True)
    tag_key = models.CharField(max_length=128, blank=True)
    tag_value = models.CharField(max_length=256, blank=True)
    priority = models.IntegerField(default=0)
    published_at = models.DateTimeField()
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = PolicyVersionQuerySet.as_manager()

    class Meta:
        ordering = ["policy_id", "number"]
        constraints = [models.UniqueConstraint(fields=["policy", "number"], name="uniq_policy_version")]

    def __str__(self) -> str:
        return self.label

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PolicyVersionImmutable(f"policy version {self.label} is published and cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PolicyVersionImmutable(f"policy version {self.label} is published and cannot be deleted")

    @property
    def label(self) -> str:
        """``high-risk v3``."""
        return f"{self.name} v{self.number}"

    @property
    def scope(self) -> dict[str, Any]:
        return {
            "is_default": self.is_default,
            "group_name": self.group_name,
            "tag_key": self.tag_key,
            "tag_value": self.tag_value,
            "priority": self.priority,
        }
