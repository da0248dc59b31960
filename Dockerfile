# syntax=docker/dockerfile:1
# lxd-api: a slim, non-root image. Build: `docker compose build` (or `make up`).

# --- build: resolve and install the runtime dependencies into a venv ------------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements.txt .
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes -r requirements.txt

# --- runtime: the venv, the app and its migrations; nothing else ---------------------------
FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_HOST=0.0.0.0 \
    APP_PORT=8000
RUN groupadd --system --gid 10001 lxdapi \
    && useradd --system --uid 10001 --gid lxdapi --home-dir /app --shell /usr/sbin/nologin lxdapi
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --chown=lxdapi:lxdapi app ./app
COPY --chown=lxdapi:lxdapi alembic ./alembic
COPY --chown=lxdapi:lxdapi alembic.ini ./
COPY --chown=lxdapi:lxdapi --chmod=0755 docker/entrypoint.sh /usr/local/bin/lxd-api-entrypoint
RUN mkdir -p /app/data && chown lxdapi:lxdapi /app/data
USER 10001:10001
EXPOSE 8000
VOLUME ["/app/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('APP_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["lxd-api-entrypoint"]
