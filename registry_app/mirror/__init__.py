"""The mirror: what the registry holds, copied into the database and kept with its history.

Pure: ``mapping`` turns API records into rows; ``package_refs`` resolves a Model's package reference (for
endpoints and the deployment history alike); ``reports`` (a package, one module per format) and ``cards``
parse evaluation reports and model cards.
A sync: ``execute`` runs a ``SyncRun`` under the source's lease (``leases``); ``reconcile`` holds the
package passes, ``apply`` their writes (records, reports, confirmed deletions) on the shared state of
``context``; ``changes`` finds content changes with Search from the source's watermark; ``fetch`` runs
Describe, Search and report GETs on threads (``aws_requests``: the two requests the adapter does not offer
yet); ``groups``; ``shards`` runs a full reconciliation in per-group steps; ``card_sync`` and ``endpoints``
make the cards-and-endpoints pass; ``events`` applies EventBridge events.
``runs`` requests, records and closes runs. Reads: ``selectors`` (groups and packages) and
``sync_status`` (sources and their runs) for the pages.
"""
