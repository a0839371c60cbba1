"""Actor search by prefix, ignoring case (/audit/?actor=): on PostgreSQL, expression indexes on
``LOWER(actor_name) text_pattern_ops`` so ``LOWER(actor_name) LIKE 'prefix%'`` is an index range scan
under any database collation. SQLite has no operator classes (and its LIKE uses no index): nothing to do.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

INDEXES = (
    ("ct_actor_lower_prefix", "registry_app_cloudtrailevent", "event_time"),
    ("audit_actor_lower_prefix", "registry_app_auditlogentry", "created_at"),
)


def create(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, table, time_column in INDEXES:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" '
            f'((LOWER("actor_name")) text_pattern_ops, "{time_column}" DESC)'
        )


def drop(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _, _ in INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [("registry_app", "0010_provenance")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
