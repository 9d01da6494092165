"""Async engine per service (its own schema) and Alembic migrations applied at start-up."""

import asyncio
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


def create_engine(database_url: str, *, schema: str, pool_size: int = 10) -> AsyncEngine:
    """An engine whose connections see only `schema` (and public) by default."""
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args={"server_settings": {"search_path": schema, "application_name": schema}},
    )


# Alembic's `context` is process-global: services sharing a process (standalone mode) migrate in turn.
_migrating = asyncio.Lock()


async def migrate(engine: AsyncEngine, *, migrations_dir: Path, schema: str) -> None:
    """Create the schema and apply this service's Alembic history, one process at a time."""
    async with _migrating:
        await _migrate(engine, migrations_dir=migrations_dir, schema=schema)


async def _migrate(engine: AsyncEngine, *, migrations_dir: Path, schema: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"migrate:{schema}"))))
        await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await run_alembic(conn, command.upgrade, "head", migrations_dir=migrations_dir, schema=schema)


async def run_alembic(conn: AsyncConnection, alembic_command: Callable, *args, migrations_dir: Path, schema: str,
                      **kwargs) -> None:
    """Run an Alembic command (`alembic.command.upgrade`, `.downgrade`, `.revision`...) over a service's
    migrations, on `conn` and in `schema`, as env.py expects (`run_migrations_online`)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["schema"] = schema

    def run(sync_conn) -> None:
        cfg.attributes["connection"] = sync_conn
        alembic_command(cfg, *args, **kwargs)

    await conn.run_sync(run)


def run_migrations_online(context, metadata: sa.MetaData) -> None:
    """Body of every service's migrations/env.py: migrate on the connection we were given."""
    connection = context.config.attributes["connection"]
    schema = context.config.attributes["schema"]
    context.configure(connection=connection, target_metadata=metadata, version_table_schema=schema,
                      include_schemas=False,
                      include_name=lambda name, type_, parent: not (type_ == "table" and name == "alembic_version"))
    with context.begin_transaction():
        context.run_migrations()


async def ping(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        return True
    except Exception:
        return False
