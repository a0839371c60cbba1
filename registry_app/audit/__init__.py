"""Audit: the hash-chained log, CloudTrail events, deployments, outside decisions, the audit reads and exports.

Writes: ``log`` appends to the chain (``receivers`` guard it and write the signal entries),
``ingest`` loads CloudTrail (``ingest_run``, ``ingest_lookup``, ``ingest_s3``, ``ingest_writer``,
``ingest_linker``), ``deployments`` rebuilds endpoint history (``deployment_chain``: the pure part),
``outside_decisions`` flags registry decisions the dashboard did not push.

Pure: ``events`` parses CloudTrail (``event_keys``, ``event_actors``, ``event_links``,
``trail_files``), ``outside_rules``, ``values``, ``params``, ``paging``.

Reads: ``chain`` (the hash rule and the walk that verifies it), ``timeline`` (with
``timeline_items``), ``search``, ``as_of`` (``as_of_package``, ``as_of_status``, ``as_of_evidence``),
``endpoints``, ``bypasses``. ``exports`` writes CSV/JSON/print, ``packs`` the auditor packs.
"""
