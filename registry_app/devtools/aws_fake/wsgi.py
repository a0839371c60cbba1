"""The fake as a WSGI application, for a server that keeps connections alive.

moto's own server is werkzeug's development server, which closes the connection after every
response (werkzeug disables HTTP/1.1 keep-alive on purpose), so every AWS call through it pays a
TCP connect. AWS keeps connections alive and botocore reuses them from its pool. A benchmark that
counts the client's CPU per call therefore serves the fake with gunicorn's threaded worker (one
process: moto's state lives in it)::

    MOTO_PORT=5005 gunicorn -w 1 -k gthread --threads 8 --keep-alive 75 -b 127.0.0.1:5005 \
        registry_app.devtools.aws_fake.wsgi:app

``benchmarks/benchlib.start_fake(port, keep_alive=True)`` does this.
"""

from __future__ import annotations

from moto.server import DomainDispatcherApplication, create_backend_app

from registry_app.devtools.aws_fake import install

install()
app = DomainDispatcherApplication(create_backend_app)
