# syntax=docker/dockerfile:1
# One image for all five services (and itsm-standalone). The command picks the service:
#   docker run itsm-platform                 -> incident-svc (the default)
#   docker run itsm-platform sla-svc         -> sla-svc, and so on for change-svc, cmdb-svc, notify-svc
# Build from the repository root: docker build -t itsm-platform:dev .

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build

ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

# Compile bytecode at build time (the runtime root filesystem is read-only), copy rather than
# hard-link out of the cache mount, and always use the base image's interpreter.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app

# Third-party dependencies first, from the lock file and the members' pyproject.toml only, so
# this layer is reused until a dependency changes.
COPY pyproject.toml uv.lock ./
COPY libs/events/pyproject.toml libs/events/
COPY libs/runtime/pyproject.toml libs/runtime/
COPY libs/standalone/pyproject.toml libs/standalone/
COPY services/incident-svc/pyproject.toml services/incident-svc/
COPY services/sla-svc/pyproject.toml services/sla-svc/
COPY services/change-svc/pyproject.toml services/change-svc/
COPY services/cmdb-svc/pyproject.toml services/cmdb-svc/
COPY services/notify-svc/pyproject.toml services/notify-svc/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace

# Then the workspace itself. Members stay installed from /app/{libs,services} (uv's default
# editable install): each service finds its Alembic history next to its package
# (services/<name>/migrations), so the source tree has to be where the venv points.
COPY libs libs
COPY services services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev \
 && python -m compileall -q libs services


FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="itsm-platform" \
      org.opencontainers.image.description="ITSM platform services: incident, sla, change, cmdb, notify"

RUN groupadd --system --gid 10001 itsm \
 && useradd --system --uid 10001 --gid itsm --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin itsm

# Owned by root and not writable by the service user: the code is immutable at run time.
COPY --from=build /app /app

# Inside a container a service must listen on every interface (the settings default is
# 127.0.0.1); compose files and manifests set these too, so they never depend on the image.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    INCIDENT_HOST=0.0.0.0 \
    SLA_HOST=0.0.0.0 \
    CHANGE_HOST=0.0.0.0 \
    CMDB_HOST=0.0.0.0 \
    NOTIFY_HOST=0.0.0.0

WORKDIR /app
USER 10001:10001
EXPOSE 8101 8102 8103 8104 8105

CMD ["incident-svc"]
