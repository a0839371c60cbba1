"""The mirror: what the registry holds, copied into the database and kept with its history.

``mapping`` turns API records into rows (pure), ``reports`` and ``cards`` parse evaluation
reports and model cards (pure), ``reconcile`` runs a sync, ``runs`` records and schedules them,
``selectors`` reads groups, packages and sync status for the pages.
"""
