"""Audit: the hash-chained log, CloudTrail events, deployments, outside decisions and exports.

``log`` appends and verifies the chain, ``events`` parses CloudTrail (pure), ``ingest`` loads it,
``deployments`` rebuilds endpoint history, ``outside_decisions`` flags registry decisions the
dashboard did not push, ``selectors`` answers timelines, search and as-of, ``exports`` writes
CSV/JSON/print and auditor packs.
"""
