"""Autogenerate an Alembic revision for one service against a scratch schema.

    python -m itsm_runtime.revision <service package> "<message>"   (DATABASE_URL must be set)
"""

import asyncio
import importlib
import os
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from .db import create_engine, migrate


async def main(package: str, message: str) -> None:
    main_module = importlib.import_module(f"{package}.main")
    migrations: Path = main_module.MIGRATIONS
    url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+asyncpg://")
    schema = f"revision_{package}"
    engine = create_engine(url, schema=schema)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await migrate(engine, migrations_dir=migrations, schema=schema)
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.attributes["schema"] = schema
    async with engine.begin() as conn:
        def revision(sync_conn):
            cfg.attributes["connection"] = sync_conn
            command.revision(cfg, message=message, autogenerate=True)

        await conn.run_sync(revision)
        await conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
