"""The mirror: what the registry holds, copied into the database and kept with its history.

Pure: ``mapping`` turns API records into rows; ``reports`` (a package, one module per format) and
``cards`` parse evaluation reports and model cards.
A sync: ``execute`` runs a ``SyncRun`` under the source's lease (``leases``); ``reconcile`` holds the
package passes on the shared state of ``context``, with ``fetch`` (Describe, Search and report GETs on
threads) and ``groups``; ``shards`` runs a full reconciliation in per-group steps; ``card_sync`` and
``endpoints`` make the cards-and-endpoints pass; ``events`` applies EventBridge events.
``runs`` requests, records and closes runs. Reads: ``selectors`` (groups and packages) and
``sync_status`` (sources and their runs) for the pages.
"""
