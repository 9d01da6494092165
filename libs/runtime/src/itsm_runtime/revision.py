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

from .db import create_engine, migrate, run_alembic


async def main(package: str, message: str) -> None:
    main_module = importlib.import_module(f"{package}.main")
    migrations: Path = main_module.MIGRATIONS
    url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+asyncpg://")
    schema = f"revision_{package}"
    engine = create_engine(url, schema=schema)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await migrate(engine, migrations_dir=migrations, schema=schema)
    async with engine.begin() as conn:
        await run_alembic(conn, command.revision, migrations_dir=migrations, schema=schema, message=message,
                          autogenerate=True)
        await conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
