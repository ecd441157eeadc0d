# The AntRing accounts service: serves on port 8000 as a non-root user (uid 10001).
# Set DATABASE_URL (postgresql+asyncpg://...) and ANTRING_SECRET_KEY (32+ random characters);
# `antring migrate` applies the migrations (deploy/compose.yaml runs it before the service).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ANTRING_ENVIRONMENT=production \
    ANTRING_BOOTSTRAP=false \
    ANTRING_LOG_FORMAT=json \
    DATABASE_URL=sqlite+aiosqlite:////srv/data/antring.db

WORKDIR /srv/antring
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
# The error messages' catalogues are compiled here from their .po source (Babel is a runtime
# dependency, installed above).
RUN pybabel compile -d app/errors/locales -D messages \
    && pip install --no-cache-dir --no-deps . \
    && useradd --system --uid 10001 --home-dir /srv/data --create-home antring

# By number, so that Kubernetes' runAsNonRoot can verify it.
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/ready')"]
CMD ["antring", "serve", "--host", "0.0.0.0", "--port", "8000"]
