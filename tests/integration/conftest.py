"""Integration fixtures (moto_server, celery_worker_live) live in tests/conftest.py."""
