# One image for web, worker and beat (docker-compose.yml picks the command).
# Debian bookworm: clinic/tests/test_deploy.py maps the wheels' shared libraries to bookworm's packages.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 VAR_DIR=/app/var
WORKDIR /app

# The system libraries the wheels link against beyond the base image's (clinic/tests/test_deploy.py checks the list):
# libgomp1 is OpenMP, which LightGBM's library loads when the URLconf and the worker's tasks import it.
# postgresql-client: pg_dump and pg_restore for `manage.py backup` and `restore_check` (docs/BACKUP.md).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 postgresql-client \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 clinic
# The lock (`make lock`): every package pinned with its hashes, nothing resolved at build time.
COPY requirements.txt .
RUN pip install --no-cache-dir --require-hashes -r requirements.txt

COPY . .
# collectstatic needs production settings to load, which refuse to without keys: random ones, made for this step and
# gone with it (no secret in the image; .env is in .dockerignore, the build needs none).
RUN DJANGO_ENV=production ALLOWED_HOSTS=build \
    SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    AUDIT_HMAC_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(32))')" \
    python manage.py collectstatic --noinput \
    && mkdir -p /app/var && chown -R clinic /app/var
USER clinic

EXPOSE 8000
CMD ["gunicorn", "clinic.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--graceful-timeout", "30"]
