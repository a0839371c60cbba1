"""Operations: health checks, structured log context, Prometheus metrics (see README, Operations).

Nothing in here runs at import time beyond defining classes and connecting Celery signals
(``celery_signals``), so settings and ``governance/celery.py`` may import these modules early.
"""
