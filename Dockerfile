FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md alembic.ini constraints.txt ./
COPY registry ./registry
COPY api ./api
COPY cli ./cli
COPY migrations ./migrations
# -c constraints.txt: the versions the tests passed with, not whatever is newest on the day the image is built.
RUN pip install -c constraints.txt . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin registry \
    && mkdir -p /app/.registry && chown registry /app/.registry

USER registry
EXPOSE 8000
# Production needs REGISTRY_ENV=production, REGISTRY_DATABASE_URL, REGISTRY_MASTER_KEY and REGISTRY_PUBLIC_BASE_URL.
# Behind a proxy in another container (nginx, deploy/), set FORWARDED_ALLOW_IPS to the proxy's address (uvicorn's
# default trusts 127.0.0.1 alone): otherwise every client counts as the proxy's address, and rate limits and holder
# sign-in lockouts hit everyone at once. Never "*" while the port can be reached other than through the proxy.
# Liveness, not readiness: /healthz answers while the process serves; /readyz also needs the database, and a database
# outage is not cured by restarting every registry container. Migrations run before serving, hence the start period.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["registry", "serve", "--host", "0.0.0.0", "--port", "8000"]
