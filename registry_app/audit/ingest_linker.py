"""Linking stored CloudTrail events to the mirror: ``Linker`` resolves an event's link keys (package
ARN or group/version, group, card) to row ids and its actor to a dashboard user; ``relink_events``
links events stored before the mirror knew their package or group.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db.models.functions import Lower

from registry_app.audit.event_keys import CARD, GROUP, PACKAGE
from registry_app.audit.event_links import PackageRef, package_ref
from registry_app.audit.events import PreparedEvent, PreparedRow
from registry_app.aws.identity import HASH_LENGTH, MAX_LENGTH, MIN_LENGTH, fold_identity
from registry_app.models import CloudTrailEvent, ModelCard, ModelPackage, ModelPackageGroup, RegistrySource

__all__ = ["Linker", "relink_events"]

# A folded identity ends in "-" and 8 hex digits (or is only those): what ``fold_identity`` appends when it
# had to change a username. Names already valid for STS are sent (and recorded) as they are.
_FOLDED_RE = re.compile(rf"(^|-)[0-9a-f]{{{HASH_LENGTH}}}$")
_VALID_IDENTITY = rf"^[A-Za-z0-9_+=,.@-]{{{MIN_LENGTH},{MAX_LENGTH}}}$"

# The positions of the link keys in a prepared event (see ``events.PreparedRow``).
_FIELD = {name: index for index, name in enumerate(PreparedEvent._fields)}
_RESOURCE_TYPE = _FIELD["resource_type"]
_P_ARN, _P_GROUP, _P_VERSION, _P_NAME = (
    _FIELD["package_arn"],
    _FIELD["package_group"],
    _FIELD["package_version"],
    _FIELD["package_name"],
)
_GROUP_NAME, _CARD_NAME = _FIELD["group_name"], _FIELD["card_name"]


class Linker:
    """Resolves link keys against the mirror (packages, groups, cards) and dashboard users.

    The mirror is indexed once per run (lower-cased ARNs and names: ARNs and names arrive in
    whatever case the caller wrote); users are looked up per batch and cached.
    """

    def __init__(self, source: RegistrySource) -> None:
        self.source = source
        self._packages: dict[str, tuple[int, int]] | None = None
        self._versions: dict[tuple[str, int], tuple[int, int]] = {}
        self._groups: dict[str, int] = {}
        self._cards: dict[str, tuple[int, int] | None] = {}
        self._users: dict[str, int | None] = {}
        self._folds: dict[str, int] | None = None

    def _load(self) -> None:
        self._packages = {}
        for pk, arn, group_id, group_name, version, source_id in ModelPackage.objects.values_list(
            "pk", "arn", "group_id", "group__name", "version", "source_id"
        ):
            self._packages[arn.lower()] = (pk, group_id)
            if source_id == self.source.pk:
                self._versions[(group_name.lower(), version)] = (pk, group_id)
        self._groups = {
            name.lower(): pk
            for pk, name in ModelPackageGroup.objects.filter(source=self.source).values_list("pk", "name")
        }
        card_packages: dict[int, list[tuple[int, int]]] = {}
        for card_id, pk, group_id in ModelPackage.objects.filter(
            source=self.source, model_card__isnull=False
        ).values_list("model_card_id", "pk", "group_id"):
            card_packages.setdefault(card_id, []).append((pk, group_id))
        for pk, name in ModelCard.objects.filter(source=self.source).values_list("pk", "name"):
            linked = card_packages.get(pk) or []
            self._cards[name.lower()] = linked[0] if len(linked) == 1 else None

    def package(self, ref: PackageRef) -> tuple[int | None, int | None]:
        return self._package(ref.arn, ref.group, ref.version)

    def _package(self, arn: str, group: str, version: int | None) -> tuple[int | None, int | None]:
        if self._packages is None:
            self._load()
        assert self._packages is not None
        if arn:
            found = self._packages.get(arn.lower())
            if found:
                return found
        if group and version is not None:
            found = self._versions.get((group.lower(), version))
            if found:
                return found
        return None, None

    def group(self, name: str) -> int | None:
        if self._packages is None:
            self._load()
        return self._groups.get(name.lower()) if name else None

    def card(self, name: str) -> tuple[int, int] | None:
        if self._packages is None:
            self._load()
        return self._cards.get(name.lower()) if name else None

    def prefetch_users(self, names: Iterable[str]) -> None:
        """Look the candidate names (lower-cased) up as usernames, and as the folded source identities
        pushes send for usernames STS would refuse (``aws.identity.fold_identity``: ``josé.müller`` acts
        in CloudTrail as ``jose.muller-<hash>``)."""
        wanted = {n for n in names if n and n not in self._users}
        if not wanted:
            return
        for name in wanted:
            self._users[name] = None
        user_model = get_user_model()
        for pk, username in (
            user_model.objects.annotate(lname=Lower(user_model.USERNAME_FIELD))
            .filter(lname__in=wanted)
            .values_list("pk", user_model.USERNAME_FIELD)
        ):
            self._users[str(username).lower()] = pk
        folded = [n for n in wanted if self._users.get(n) is None and _FOLDED_RE.search(n)]
        if folded:
            by_fold = self._folded_users()
            for name in folded:
                self._users[name] = by_fold.get(name)

    def _folded_users(self) -> dict[str, int]:
        """Lower-cased folded identity -> user, for the usernames that fold to something else (loaded
        once per run: only names outside STS's alphabet or length, a small set)."""
        if self._folds is None:
            user_model = get_user_model()
            field = user_model.USERNAME_FIELD
            self._folds = {}
            for pk, username in user_model.objects.exclude(**{f"{field}__regex": _VALID_IDENTITY}).values_list(
                "pk", field
            ):
                self._folds.setdefault(fold_identity(str(username)).lower(), pk)
        return self._folds

    def user(self, candidates: tuple[str, ...]) -> int | None:
        for name in candidates:
            pk = self._users.get(name)
            if pk is not None:
                return pk
        return None

    def resolve(self, event: PreparedRow) -> tuple[int | None, int | None]:
        """(package id, group id) for an event's link keys."""
        package_id = group_id = None
        if event[_P_NAME]:
            package_id, group_id = self._package(event[_P_ARN], event[_P_GROUP], event[_P_VERSION])
        if group_id is None and event[_GROUP_NAME]:
            group_id = self.group(event[_GROUP_NAME])
        if event[_RESOURCE_TYPE] == CARD and package_id is None:
            found = self.card(event[_CARD_NAME])
            if found:
                package_id, group_id = found
        return package_id, group_id


def relink_events(source: RegistrySource, *, since: dt.datetime | None = None, limit: int = 5000) -> int:
    """Link events stored before the mirror knew their package or group. Returns rows updated.

    With ``since``, only packages and groups the mirror first saw since then are considered (an
    event can only be unlinked if its package was unknown when it was stored), each by an indexed
    ``resource_name`` match; without it, the unlinked events themselves are scanned (first run).
    """
    linker = Linker(source)
    updated = 0
    if since is not None:
        for arn, group, version in ModelPackage.objects.filter(first_seen_at__gte=since).values_list(
            "arn", "group__name", "version"
        )[:limit]:
            package_id, group_id = linker.package(package_ref(arn))
            names = {arn, arn.lower(), f"{group}/{version}"}
            updated += CloudTrailEvent.objects.filter(
                source=source, resource_name__in=names, package__isnull=True, resource_type=PACKAGE
            ).update(package_id=package_id, group_id=group_id)
        for name, group_id in ModelPackageGroup.objects.filter(source=source, first_seen_at__gte=since).values_list(
            "name", "pk"
        )[:limit]:
            updated += CloudTrailEvent.objects.filter(
                source=source, resource_name__in={name, name.lower()}, group__isnull=True, resource_type=GROUP
            ).update(group_id=group_id)
        return updated
    candidates = (
        CloudTrailEvent.objects.filter(source=source, package__isnull=True, resource_type=PACKAGE)
        .values_list("resource_name", flat=True)
        .distinct()[:limit]
    )
    for name in list(candidates):
        package_id, group_id = linker.package(package_ref(name))
        if package_id is not None:
            updated += CloudTrailEvent.objects.filter(
                source=source, package__isnull=True, resource_type=PACKAGE, resource_name=name
            ).update(package_id=package_id, group_id=group_id)
    group_names = (
        CloudTrailEvent.objects.filter(source=source, group__isnull=True, resource_type=GROUP)
        .values_list("resource_name", flat=True)
        .distinct()[:limit]
    )
    for name in list(group_names):
        group_id = linker.group(name)
        if group_id is not None:
            updated += CloudTrailEvent.objects.filter(
                source=source, group__isnull=True, resource_type=GROUP, resource_name=name
            ).update(group_id=group_id)
    return updated
