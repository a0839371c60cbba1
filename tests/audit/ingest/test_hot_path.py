"""The backfill's hot path (keys read as CloudTrail spells them, rows flattened in the parsing
process, binary COPY without the look-up) must store exactly what the general path stores."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from registry_app.audit import events, ingest_parse, ingest_writer
from registry_app.audit.ingest_linker import Linker
from registry_app.models import CloudTrailEvent, RegistrySource
from tests.audit.ingest import records as r
from tests.factories import RegistrySourceFactory

NOW = timezone.now()


def _respelt(value: Any, spell: Any) -> Any:
    """``value`` with every key of every map re-spelt by ``spell`` (values unchanged)."""
    if isinstance(value, list):
        return [_respelt(item, spell) for item in value]
    if isinstance(value, dict):
        return {spell(key): _respelt(item, spell) for key, item in value.items()}
    return value


def _records() -> list[dict[str, Any]]:
    return [
        r.create_group("g"),
        r.create_package("g", 3),
        r.approve("g", 2, identity=r.sso_user("carol")),
        r.create_model("m", r.arn_package("g", 1)),
        r.create_config("c", [("v", "m", 1.0)]),
        r.endpoint_call("CreateEndpoint", "ep", "c", identity=r.identity_center_user(user_name="bob")),
        r.update_weights("ep", {"v": 1.0}),
    ]


def _fields(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    _, prepared = events.prepare_records(records, fallback_time=NOW)
    return [tuple(event)[:-1] for event in prepared]  # all but the raw JSON, which keeps the spelling


@pytest.mark.parametrize(
    "spell",
    [str.upper, str.lower, lambda key: key[:1].upper() + key[1:]],
    ids=["UPPER", "lower", "PascalCase"],
)
def test_any_key_spelling_normalises_like_cloudtrails_own(spell: Any) -> None:
    records = _records()
    expected = _fields(records)
    assert all(row[events.PreparedEvent._fields.index("resource_type")] for row in expected)
    assert _fields([_respelt(rec, spell) for rec in records]) == expected


def test_a_map_with_two_spellings_of_a_key_reads_the_last_one() -> None:
    rec = r.approve("g", 2)
    twice = copy.deepcopy(rec)
    twice["responseElements"]["ModelPackageArn"] = r.arn_package("other", 7)
    (row,) = _fields([twice])
    assert row[events.PreparedEvent._fields.index("package_group")] == "other"
    assert row[events.PreparedEvent._fields.index("package_version")] == 7


def test_log_rows_are_the_prepared_events_with_the_files_own_json() -> None:
    records = [*_records(), r.describe(), {"eventName": 5, "userIdentity": "x", "requestParameters": []}]
    body = r.gz(records)
    seen, rows = events.prepare_log_rows(body, NOW)
    count, prepared = events.prepare_log_file(body, NOW)
    assert (seen, count) == (len(records), len(records))
    assert rows == [tuple(event) for event in prepared]
    assert all(type(row) is tuple for row in rows)
    assert [json.loads(row[-1]) for row in rows] == [rec for rec in records if events.is_relevant(rec)]


@pytest.mark.django_db
def test_parsing_process_entry_point_restores_the_garbage_collector() -> None:
    import gc

    assert gc.isenabled()
    seen, rows = ingest_parse.prepare_rows(r.gz(_records()), NOW)
    assert gc.isenabled()
    assert (seen, len(rows)) == (7, 7)


@pytest.fixture
def source(db: None) -> RegistrySource:
    return RegistrySourceFactory(name="prod", region=r.REGION, account_id=r.ACCOUNT)


def _rows(source: RegistrySource, records: list[dict[str, Any]]) -> list[list[Any]]:
    _, prepared = events.prepare_records(records, fallback_time=NOW)
    linker = Linker(source)
    return [ingest_writer._values(source.pk, "s3", event, linker, NOW) for event in prepared]


def test_postgres_copy_skips_the_lookup_after_a_clean_batch_and_still_ignores_duplicates(
    source: RegistrySource, monkeypatch: pytest.MonkeyPatch
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the COPY path is PostgreSQL's")
    monkeypatch.setattr(ingest_writer, "_COPY_CLEAN", {})
    first, second, third = (r.approve("g", version) for version in (1, 2, 3))
    lookups: list[str] = []

    def count(execute: Any, sql: str, *args: Any) -> Any:
        if "= ANY" in sql:
            lookups.append(sql)
        return execute(sql, *args)

    with connection.execute_wrapper(count):
        assert ingest_writer._copy_rows(connection, _rows(source, [first])) == {first["eventID"]}
        assert len(lookups) == 1  # nothing known yet about this database: looked up first
        assert ingest_writer._copy_rows(connection, _rows(source, [second])) == {second["eventID"]}
        assert len(lookups) == 1  # the last look-up found nothing stored: COPYed straight away
        # A batch with a stored id: the COPY is rolled back, the look-up sorts it out.
        assert ingest_writer._copy_rows(connection, _rows(source, [third, first])) == {third["eventID"]}
        assert len(lookups) == 2
        assert ingest_writer._copy_rows(connection, _rows(source, [second])) == set()
        assert len(lookups) == 3  # the last look-up found a stored id: looked up first again
    stored = CloudTrailEvent.objects.filter(event_id__in=[first["eventID"], second["eventID"], third["eventID"]])
    assert sorted(stored.values_list("event_id", flat=True)) == sorted(
        [first["eventID"], second["eventID"], third["eventID"]]
    )
    event = stored.get(event_id=second["eventID"])
    assert json.loads(event.raw) == second if isinstance(event.raw, str) else event.raw == second
    assert event.event_time == events.parse_event_time(second["eventTime"])


def test_the_parsing_process_function_imports_without_django() -> None:
    """A forkserver parsing process unpickles the parse function by importing its module before
    (and without) ``django.setup()``: that module must not import models. After the audit split the
    function sat in a module importing models, every parsing process died with AppRegistryNotReady
    and parsing fell back to threads (seen in `make demo`'s log)."""
    import subprocess
    import sys

    code = (
        "import os; os.environ.pop('DJANGO_SETTINGS_MODULE', None);"
        "import registry_app.audit.ingest_parse as p; print(p.prepare_file.__module__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "registry_app.audit.ingest_parse"
