FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md alembic.ini ./
COPY registry ./registry
COPY api ./api
COPY cli ./cli
COPY migrations ./migrations
RUN pip install . && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin registry \
    && mkdir -p /app/.registry && chown registry /app/.registry

USER registry
EXPOSE 8000
# Production needs REGISTRY_ENV=production, REGISTRY_DATABASE_URL, REGISTRY_MASTER_KEY and REGISTRY_PUBLIC_BASE_URL.
ENTRYPOINT ["registry", "serve", "--host", "0.0.0.0", "--port", "8000"]
