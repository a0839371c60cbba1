"""The HTTP layer of the deploy-gate API (``/api/v1/``): auth, throttling, audit, schemas, routes.

Business logic lives in ``registry_app.gate``; nothing here decides deployability.
"""

from __future__ import annotations
