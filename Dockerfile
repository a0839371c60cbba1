# The one image for every process of the stack: web (gunicorn), the Celery workers, beat, the
# one-shot migrate/seed jobs and, for local use, the moto server (moto is a runtime dependency
# for the demo). See docker-compose.yml and docs/scaling.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app

# Dependencies first (pinned by requirements.lock), so a code change does not reinstall them.
COPY pyproject.toml requirements.lock README.md ./
COPY governance ./governance
COPY registry_app ./registry_app
RUN pip install -c requirements.lock .

COPY . .
# Production settings (DEBUG off: hashed, compressed files and their manifest, which the runtime
# storage requires) with a throw-away key: no key is ever baked into the image.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" DEBUG=false \
    python manage.py collectstatic --noinput \
    && useradd --system --uid 10001 --home-dir /app governance \
    && mkdir -p /app/var \
    && chown -R governance /app/var

USER governance
EXPOSE 8000
CMD ["gunicorn", "governance.wsgi", "-b", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--access-logfile", "-"]
