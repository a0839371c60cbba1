"""The state one sync step shares: the source, its run and client, counts, errors, progress, the groups.

``RegistrySync`` (``reconcile``) extends it with the package passes. The group, card, endpoint and event
steps take a context as their first argument, so each lives in its own module and none imports the
package passes.
"""

from __future__ import annotations

import logging
import time

from registry_app.aws.sagemaker import RegistryClient
from registry_app.mirror.leases import renew_lock
from registry_app.models import ModelPackageGroup, RegistrySource, SyncRun

log = logging.getLogger(__name__)
MAX_ERRORS_KEPT = 200


class SyncContext:
    """One step of one run: what it counts and reports, and the groups it knows, by name."""

    def __init__(
        self,
        source: RegistrySource,
        run: SyncRun | None,
        client: RegistryClient,
        *,
        lock_token: str = "",
        label: str = "",
    ) -> None:
        self.source = source
        self.run = run
        self.client = client
        self.lock_token = lock_token
        # Set for one step of a sharded full reconciliation: progress names the step, and the
        # run's AWS call counts are merged at the end of the step instead of overwritten.
        self.label = label
        self.counts: dict[str, int] = {}
        self.errors: list[dict[str, str]] = []
        self.groups: dict[str, ModelPackageGroup] = {}  # by name, as ``load_groups`` read them
        self._last_progress = 0.0

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def error(self, subject: str, message: str) -> None:
        self.count("errors")
        log.warning("sync %s: %s: %s", self.source.name, subject, message)
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append({"subject": subject[:300], "message": message[:1000]})

    def warn(self, key: str, message: str) -> None:
        """Something worth counting that is no failure of the run (it stays ``succeeded``)."""
        self.count(key)
        log.info("sync %s: %s", self.source.name, message)

    def progress(self, text: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.run is not None and (force or now - self._last_progress > 2.0):
            self._last_progress = now
            if self.label:
                SyncRun.objects.filter(pk=self.run.pk).update(progress=f"{self.label}{text}"[:200])
            else:
                SyncRun.objects.filter(pk=self.run.pk).update(
                    progress=text[:200], aws_calls=self.client.stats.as_dict()
                )
            if self.lock_token:
                renew_lock(self.source, self.lock_token)

    def ensure_account(self) -> None:
        if not self.source.account_id:
            self.source.account_id = self.client.account_id()
            RegistrySource.objects.filter(pk=self.source.pk).update(account_id=self.source.account_id)

    def load_groups(self) -> None:
        self.groups = {g.name: g for g in ModelPackageGroup.objects.filter(source=self.source)}
