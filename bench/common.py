"""What the benchmarks share: a fresh database, the services as processes, percentiles."""

import os
import statistics
import uuid
from pathlib import Path

import asyncpg

from itsm_standalone.stack import ProcessStack

RESULTS = Path(__file__).parent / "results"


async def fresh_database() -> str:
    server = os.environ["ITSM_TEST_DATABASE_URL"]
    name = f"bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return server.rsplit("/", 1)[0] + "/" + name


async def start_stack(*names: str, extra_env: dict[str, str] | None = None) -> ProcessStack:
    RESULTS.mkdir(exist_ok=True)
    stack = ProcessStack(database_url=await fresh_database(), kafka=os.environ["ITSM_TEST_KAFKA"],
                         log_dir=RESULTS, port_offset=20000,
                         extra_env={"LOG_LEVEL": "WARNING", **(extra_env or {})})
    for name in names:
        stack.start(name)
    return stack


def percentile(values: list[float], p: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[int(p * 10) - 1]
