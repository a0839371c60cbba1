"""The trail's S3 files: log-file parsing and the key layout (no database, no AWS)."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import pytest

from registry_app.audit.events import prepare_log_file
from registry_app.audit.trail_files import (
    LogFileError,
    day_start_after,
    delivery_time,
    is_log_key,
    parse_log_file,
    parse_log_file_texts,
    rewound_start_after,
    trail_root,
)
from tests.audit.ingest import records as r

NOW = dt.datetime(2025, 3, 14, 12, 0, tzinfo=dt.UTC)
PKG = r.arn_package("credit-risk", 7)


def test_parse_log_file() -> None:
    records = [r.approve("credit-risk", 7), r.describe()]
    assert parse_log_file(r.gz(records)) == records
    assert parse_log_file(json.dumps({"Records": records}).encode()) == records  # not compressed
    with pytest.raises(LogFileError, match="gzip"):
        parse_log_file(r.gz(records)[:40])
    with pytest.raises(LogFileError, match="JSON"):
        parse_log_file(gzip.compress(b"{not json"))
    with pytest.raises(LogFileError, match="Records"):
        parse_log_file(gzip.compress(b'{"records": []}'))


def test_log_keys_and_roots() -> None:
    when = dt.datetime(2015, 9, 1, 10, 55, tzinfo=dt.UTC)
    key = (
        "AWSLogs/144218288521/CloudTrail/us-east-2/2015/09/01/"
        "144218288521_CloudTrail_us-east-2_20150901T1055Z_0Sfy6m9f6iBzmoPF.json.gz"
    )
    assert is_log_key(key)
    assert delivery_time(key) == when
    digest = (
        "AWSLogs/144218288521/CloudTrail-Digest/us-east-2/2015/09/01/"
        "144218288521_CloudTrail-Digest_us-east-2_trail_us-east-2_20150901T105500Z.json.gz"
    )
    assert not is_log_key(digest)
    assert not is_log_key("AWSLogs/144218288521/CloudTrail-Insight/us-east-2/2015/09/01/x.json.gz")
    assert not is_log_key("AWSLogs/144218288521/CloudTrail/us-east-2/2015/09/01/")
    assert trail_root("", "1" * 12, "eu-west-1") == f"AWSLogs/{'1' * 12}/CloudTrail/eu-west-1/"
    assert trail_root("/logs/org/", "1" * 12, "eu-west-1", org_id="o-abc") == (
        f"logs/org/AWSLogs/o-abc/{'1' * 12}/CloudTrail/eu-west-1/"
    )
    root = "AWSLogs/144218288521/CloudTrail/us-east-2/"
    assert day_start_after(root, dt.date(2015, 9, 1)) == root + "2015/09/01/"
    rewound = rewound_start_after(root, key, dt.timedelta(minutes=10))
    assert rewound == root + "2015/09/01/144218288521_CloudTrail_us-east-2_20150901T1045Z"
    assert rewound < key
    same_minute_earlier = key.replace("0Sfy6m9f6iBzmoPF", "0Aaaaaaaaaaaaaaa")
    assert rewound < same_minute_earlier < key  # the file a plain StartAfter=key would miss
    over_midnight = rewound_start_after(root, key.replace("T1055Z", "T0003Z"), dt.timedelta(minutes=10))
    assert over_midnight.startswith(root + "2015/08/31/")


def test_log_file_texts_are_the_records_own_json() -> None:
    records = [r.approve("credit-risk", 7), r.describe(), r.create_model("m", PKG)]
    pairs = parse_log_file_texts(r.gz(records))
    assert [record for record, _ in pairs] == records
    assert all(json.loads(text) == record for record, text in pairs)
    spaced = gzip.compress(b'  { "Records" : [ {"eventName": "A"} ,\n {"eventName": "B"} ] }\n')
    assert [text for _, text in parse_log_file_texts(spaced)] == ['{"eventName": "A"}', '{"eventName": "B"}']
    assert parse_log_file_texts(gzip.compress(b'{"Records": []}')) == []
    other_layout = gzip.compress(b'{"Records": [{"eventName": "A"}], "extra": 1}')
    assert parse_log_file_texts(other_layout) == [({"eventName": "A"}, '{"eventName": "A"}')]
    with pytest.raises(LogFileError, match="JSON"):
        parse_log_file_texts(gzip.compress(b'{"Records": [{"a": 1} {"b": 2}]}'))
    with pytest.raises(LogFileError, match="gzip"):
        parse_log_file_texts(r.gz(records)[:40])
    count, prepared = prepare_log_file(r.gz(records), NOW)
    assert count == 3 and [p.event_name for p in prepared] == ["UpdateModelPackage", "CreateModel"]
    assert json.loads(prepared[0].raw_json) == records[0]
