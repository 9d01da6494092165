"""What the benchmarks share: a fresh database, the services as processes, percentiles."""

import os
import statistics
from pathlib import Path

from itsm_runtime.testing import create_database
from itsm_standalone.stack import ProcessStack

RESULTS = Path(__file__).parent / "results"


async def start_stack(*names: str, extra_env: dict[str, str] | None = None) -> ProcessStack:
    RESULTS.mkdir(exist_ok=True)
    database_url = await create_database(os.environ["ITSM_TEST_DATABASE_URL"], prefix="bench")
    # service ports are 28101..28105 unless ITSM_BENCH_PORT_OFFSET moves them (two bench runs side by side)
    stack = ProcessStack(database_url=database_url, kafka=os.environ["ITSM_TEST_KAFKA"],
                         log_dir=RESULTS, port_offset=int(os.environ.get("ITSM_BENCH_PORT_OFFSET", "20000")),
                         extra_env={"LOG_LEVEL": "WARNING", **(extra_env or {})})
    for name in names:
        stack.start(name)
    return stack


def percentile(values: list[float], p: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[int(p * 10) - 1]
