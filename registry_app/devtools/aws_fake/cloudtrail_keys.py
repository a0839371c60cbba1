"""CloudTrail ``ListPublicKeys``, which moto 5.2.5 does not implement (its CloudTrail responses have no
``list_public_keys``: the call fails as not implemented).

AWS returns the public keys whose private keys signed the Region's digest files in the requested time
range (botocore ``cloudtrail/2013-11-01``: ``StartTime``/``EndTime`` optional, "If not specified, the
current time is used"; ``PublicKey = {Value (DER, PKCS#1), ValidityStartTime, ValidityEndTime,
Fingerprint}``; the keys' validity ranges may overlap). The fake has no signing keys of its own: a test,
the benchmark or the demo generates a key pair, signs its digest files with the private half and
registers the public half here, per account and Region:

    aws_fake.add_cloudtrail_public_key("eu-west-1", der, valid_from=..., valid_until=...)
    aws_fake.add_cloudtrail_public_key(..., endpoint_url="http://127.0.0.1:5000")   # a fake server

Keys live on moto's CloudTrail backend, so ``mock_aws()`` resets forget them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Any

from moto.cloudtrail.models import cloudtrail_backends
from moto.cloudtrail.responses import CloudTrailResponse
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_api._internal import urls as moto_api_urls

from registry_app.devtools.aws_fake._patching import set_attr, set_item

ADD_PUBLIC_KEY_PATH = "/moto-api/aws-fake/cloudtrail-public-key"
KEYS_ATTR = "aws_fake_public_keys"


def _utc(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def fingerprint_of(der: bytes) -> str:
    """A fingerprint in CloudTrail's form (32 hex digits); the fake's own choice: MD5 of the DER key."""
    return hashlib.md5(der, usedforsecurity=False).hexdigest()


def add_cloudtrail_public_key(
    region: str,
    der: bytes,
    *,
    valid_from: dt.datetime,
    valid_until: dt.datetime,
    fingerprint: str | None = None,
    account: str = DEFAULT_ACCOUNT_ID,
    endpoint_url: str | None = None,
) -> str:
    """Make ``ListPublicKeys`` in ``region`` return this key; returns its fingerprint."""
    fingerprint = fingerprint or fingerprint_of(der)
    if endpoint_url:
        from registry_app.devtools.aws_fake.hooks import _post

        payload = {
            "region": region,
            "der": base64.b64encode(der).decode(),
            "valid_from": _utc(valid_from).isoformat(),
            "valid_until": _utc(valid_until).isoformat(),
            "fingerprint": fingerprint,
            "account": account,
        }
        _post(endpoint_url, ADD_PUBLIC_KEY_PATH, payload)
        return fingerprint
    backend = cloudtrail_backends[account][region]
    keys = getattr(backend, KEYS_ATTR, None)
    if keys is None:
        keys = []
        setattr(backend, KEYS_ATTR, keys)
    keys.append({"der": bytes(der), "from": _utc(valid_from), "until": _utc(valid_until), "fingerprint": fingerprint})
    return fingerprint


def _list_public_keys(self: CloudTrailResponse) -> str:
    now = dt.datetime.now(dt.UTC)
    start = self._get_param("StartTime")
    end = self._get_param("EndTime")
    start_at = dt.datetime.fromtimestamp(float(start), dt.UTC) if start is not None else now
    end_at = dt.datetime.fromtimestamp(float(end), dt.UTC) if end is not None else now
    keys = getattr(self.cloudtrail_backend, KEYS_ATTR, None) or []
    listed = [
        {
            "Value": base64.b64encode(key["der"]).decode(),
            "ValidityStartTime": key["from"].timestamp(),
            "ValidityEndTime": key["until"].timestamp(),
            "Fingerprint": key["fingerprint"],
        }
        for key in keys
        if key["from"] <= end_at and start_at <= key["until"]  # validity overlaps the range asked for
    ]
    return json.dumps({"PublicKeyList": listed})


def _apply_add_key(body: dict[str, Any]) -> None:
    add_cloudtrail_public_key(
        body["region"],
        base64.b64decode(body["der"]),
        valid_from=_utc(body["valid_from"]),
        valid_until=_utc(body["valid_until"]),
        fingerprint=body.get("fingerprint"),
        account=body.get("account") or DEFAULT_ACCOUNT_ID,
    )


def install() -> None:
    from registry_app.devtools.aws_fake.hooks import _route

    set_attr(CloudTrailResponse, "list_public_keys", _list_public_keys)
    set_item(moto_api_urls.url_paths, "{0}" + ADD_PUBLIC_KEY_PATH, _route(_apply_add_key))
