"""Signal receivers of the review domain (connected in ``RegistryAppConfig.ready``).

* A policy saved or deleted, wherever (the admin, ``create_demo_policies``, a shell): a save whose
  spec or scope changed publishes the next ``PolicyVersion`` (``policy_publish``: open reviews move
  to it), and the stored review state of the packages whose policy changed is refreshed, in the
  same transaction. A receiver rather than a call in each place, because the admin saves the
  model itself; who published comes from ``audit_context`` (the admin sets it).
* A registry source renamed in the admin: its rows carry the name for their links.
* After ``migrate`` applied ``0005_review_state``: the new table is filled from the existing rows
  (a migration's historical models cannot run today's verdict, the migrated database can).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_migrate, post_save
from django.dispatch import receiver

from registry_app.models import ApprovalPolicy, RegistrySource, ReviewState

log = logging.getLogger(__name__)

STATE_MIGRATION = ("registry_app", "0005_review_state")


@receiver(post_save, sender=ApprovalPolicy, dispatch_uid="review_state_policy_saved")
@receiver(post_delete, sender=ApprovalPolicy, dispatch_uid="review_state_policy_deleted")
def _policy_changed(sender: Any, instance: ApprovalPolicy, raw: bool = False, **kwargs: Any) -> None:
    if raw:  # loaddata: the rows it loads are checked by the nightly verification
        return
    from registry_app.audit.log import current_audit_context
    from registry_app.review.policy_publish import policy_publish
    from registry_app.review.queue_state import review_state_refresh_policies

    with transaction.atomic():
        if kwargs.get("signal") is post_save:
            ctx = current_audit_context()
            policy_publish(instance, actor=ctx.actor, via=ctx.via, correlation_id=ctx.correlation_id)
        review_state_refresh_policies()


@receiver(post_save, sender=RegistrySource, dispatch_uid="review_state_source_saved")
def _source_saved(sender: Any, instance: RegistrySource, raw: bool = False, **_: Any) -> None:
    if raw:
        return
    renamed = ReviewState.objects.filter(group__source=instance).exclude(source_name=instance.name)
    ids = list(renamed.values_list("package_id", flat=True))
    if ids:
        from registry_app.review.queue_state import review_state_refresh

        with transaction.atomic():
            review_state_refresh(ids)


def fill_after_migrate(sender: Any, plan: Any = None, using: str = "default", **_: Any) -> None:
    """post_migrate: derive every row once, when this migrate applied the review-state table."""
    applied = {(m.app_label, m.name) for m, backwards in (plan or []) if not backwards}
    if STATE_MIGRATION not in applied:
        return
    from registry_app.models import ModelPackage
    from registry_app.review.queue_state import review_state_verify
    from registry_app.review.review_rows import under_review

    if not ModelPackage.objects.using(using).filter(under_review()).exists():
        return  # a new database: nothing to fill, no check to record

    check = review_state_verify(fix=True)
    log.info("review state filled: %d package(s) under review", check.checked)


def connect(app_config: Any) -> None:
    """Called from ``RegistryAppConfig.ready`` (importing this module connected the policy receivers)."""
    post_migrate.connect(fill_after_migrate, sender=app_config, dispatch_uid="review_state_fill_after_migrate")
