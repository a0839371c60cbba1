"""The audit log's signal receivers: the append-only guards, connected at start-up, and the entries
written from Django signals (logins, role grants and revocations, policy edits)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import transaction
from django.db.models.signals import pre_delete, pre_save
from django.test import Client
from django.urls import reverse

from registry_app.apps import RegistryAppConfig
from registry_app.audit.chain import verify_audit_chain
from registry_app.audit.log import AuditLogImmutable, audit_append
from registry_app.models import ApprovalPolicy, AuditLogEntry, CloudTrailEvent, ModelPackage
from tests.audit.builders import at, cloudtrail
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]

# A process that only runs django.setup(), with the admin's autodiscovery off, so nothing imports
# registry_app.admin (which used to connect the receivers as a side effect of importing the log).
_SETUP_ONLY = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "governance.settings"
import django
from django.conf import settings
apps = [a for a in settings.INSTALLED_APPS if a != "django.contrib.admin"]
settings.INSTALLED_APPS = ["django.contrib.admin.apps.SimpleAdminConfig", *apps]
django.setup()
from django.apps import apps as registry
from registry_app.models import AuditLogEntry
print(type(registry.get_app_config("registry_app")).__name__)
print("admin imported" if "registry_app.admin" in sys.modules else "admin not imported")
entry = AuditLogEntry(seq=1, hash="x", prev_hash="y")
entry._state.adding = False  # a row loaded from the database
try:
    entry.save()  # pre_save refuses before any query; unguarded, the UPDATE finds no table
except Exception as exc:
    print(f"{type(exc).__name__}: {exc}")
"""


def test_the_app_runs_its_own_config() -> None:
    """INSTALLED_APPS names the bare ``registry_app``; Django picks RegistryAppConfig, whose ready()
    connects the receivers."""
    assert isinstance(apps.get_app_config("registry_app"), RegistryAppConfig)


def test_guards_hold_after_django_setup_without_the_admin() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DATABASE_URL", "REDIS_URL"}}
    env.update({"DEBUG": "1", "DATABASE_URL": "sqlite://:memory:", "SECRET_KEY": "k" * 50})  # no fallback key
    result = subprocess.run(
        [sys.executable, "-c", _SETUP_ONLY], env=env, cwd=ROOT, capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "RegistryAppConfig",
        "admin not imported",
        "AuditLogImmutable: audit log entry #1 is append-only and cannot be changed",
    ]


def test_ready_connects_the_guards(package: ModelPackage) -> None:
    """Disconnected, then ready() again: saving or deleting an existing entry is refused once more."""
    entry = audit_append("test.action", via=AuditLogEntry.Via.TASK, subject=package, package=package)
    assert pre_save.disconnect(sender=AuditLogEntry, dispatch_uid="audit_refuse_update")
    assert pre_delete.disconnect(sender=AuditLogEntry, dispatch_uid="audit_refuse_delete")
    try:
        apps.get_app_config("registry_app").ready()
        entry.message = "rewritten"
        with pytest.raises(AuditLogImmutable), transaction.atomic():
            entry.save()
        with pytest.raises(AuditLogImmutable), transaction.atomic():
            entry.delete()
    finally:
        apps.get_app_config("registry_app").ready()  # connected whatever happened above
    assert AuditLogEntry.objects.get(pk=entry.pk).message == ""
    assert verify_audit_chain().ok


def _actions() -> list[tuple[str, str, str]]:
    return list(AuditLogEntry.objects.order_by("seq").values_list("action", "actor_name", "via"))


def test_login_is_audited(client: Client) -> None:
    UserFactory(username="carol")
    assert client.login(username="carol", password="pw-test-123!")
    entry = AuditLogEntry.objects.get(action="login")
    assert (entry.actor_name, entry.via, entry.subject_type) == ("carol", "web", "user")


def test_grant_role_command_is_audited(db: None) -> None:
    UserFactory(username="carol")
    call_command("grant_role", "carol", "compliance")
    call_command("grant_role", "carol", "compliance", "--revoke")
    entries = list(AuditLogEntry.objects.order_by("seq"))
    assert [(e.action, e.via, e.subject_repr) for e in entries] == [
        ("role.granted", "command", "carol"),
        ("role.revoked", "command", "carol"),
    ]
    assert entries[0].after == {"role": "compliance"} and entries[1].before == {"role": "compliance"}
    assert verify_audit_chain().ok


def test_group_side_and_clear_are_audited(db: None) -> None:
    carol, dave = UserFactory(username="carol"), UserFactory(username="dave")
    group = Group.objects.create(name="fairness")
    group.user_set.add(carol, dave)
    carol.groups.clear()
    assert [(a, s) for a, s in AuditLogEntry.objects.order_by("seq").values_list("action", "subject_repr")] == [
        ("role.granted", "carol"),
        ("role.granted", "dave"),
        ("role.revoked", "carol"),
    ]


def test_admin_role_change_names_the_staff_user(db: None) -> None:
    admin_user = UserFactory(username="root", is_staff=True, is_superuser=True)
    target = UserFactory(username="carol")
    compliance = Group.objects.create(name="compliance")
    client = Client()
    client.force_login(admin_user)
    url = reverse("admin:auth_user_change", args=[target.pk])
    page = client.get(url)
    assert page.status_code == 200
    joined = target.date_joined
    data = {
        "username": "carol",
        "first_name": "",
        "last_name": "",
        "email": "carol@example.com",
        "is_active": "on",
        "groups": [str(compliance.pk)],
        "date_joined_0": joined.strftime("%Y-%m-%d"),
        "date_joined_1": joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.content[:2000]
    entry = AuditLogEntry.objects.get(action="role.granted")
    assert (entry.actor_name, entry.via, entry.subject_repr, entry.after) == (
        "root",
        "web",
        "carol",
        {"role": "compliance"},
    )


def test_policy_changes_are_audited(db: None) -> None:
    spec = {"name": "strict", "required_roles": {"ml-lead": 1}}
    policy = ApprovalPolicy.objects.create(name="strict", spec=spec, group_name="credit-risk")
    policy.priority = 5
    policy.save()
    policy.save()  # no change: no entry
    policy.delete()
    actions = [a for a, _, _ in _actions() if a != "policy.published"]  # versions: tests/review/test_policy_publish.py
    assert actions == ["policy.created", "policy.changed", "policy.deleted"]
    changed = AuditLogEntry.objects.get(action="policy.changed")
    assert changed.before["priority"] == 0 and changed.after["priority"] == 5


def test_admin_is_read_only_for_the_log_and_cloudtrail(db: None) -> None:
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    cloudtrail("UpdateModelPackage", at(1))
    entry = AuditLogEntry.objects.get(action="login")
    event = CloudTrailEvent.objects.get()
    assert client.get(reverse("admin:registry_app_auditlogentry_changelist")).status_code == 200
    assert client.get(reverse("admin:registry_app_cloudtrailevent_changelist")).status_code == 200
    assert client.get(reverse("admin:registry_app_auditlogentry_add")).status_code == 403
    assert client.get(reverse("admin:registry_app_cloudtrailevent_add")).status_code == 403
    for name, pk in (("auditlogentry", entry.pk), ("cloudtrailevent", event.pk)):
        assert client.get(reverse(f"admin:registry_app_{name}_delete", args=[pk])).status_code == 403
        change = client.post(reverse(f"admin:registry_app_{name}_change", args=[pk]), {"message": "edited"})
        assert change.status_code == 403
    assert AuditLogEntry.objects.get(pk=entry.pk).message == entry.message
    assert verify_audit_chain().ok
