"""Alembic environment of cmdb-svc: migrates only this service's schema."""

from alembic import context

from cmdb_svc.db.tables import metadata
from itsm_runtime.db import run_migrations_online

run_migrations_online(context, metadata)
