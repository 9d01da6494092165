"""Incidents created per second through the HTTP API, counted when committed AND published to Kafka."""

import asyncio
import time

import asyncpg
import httpx

from .common import start_stack

TOTAL = 3000
CONCURRENCY = 32


async def run(total: int = TOTAL, concurrency: int = CONCURRENCY) -> dict:
    stack = await start_stack("incident-svc")
    try:
        url = stack.url("incident-svc") + "/v1/incidents"
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(total):
            queue.put_nowait(i)
        latencies: list[float] = []

        async def worker(client: httpx.AsyncClient) -> None:
            while not queue.empty():
                i = queue.get_nowait()
                started = time.perf_counter()
                response = await client.post(url, json={"title": f"bench {i}", "service_id": f"svc-{i % 50}",
                                                        "impact": 1 + i % 3, "urgency": 1 + i % 3})
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)

        conn = await asyncpg.connect(stack.database_url)
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:
            started = time.perf_counter()
            await asyncio.gather(*(worker(client) for _ in range(concurrency)))
            http_done = time.perf_counter()
            while await conn.fetchval("SELECT count(*) FROM incident.outbox WHERE published_at IS NULL"):
                await asyncio.sleep(0.01)
            published = time.perf_counter()
        published_rows = await conn.fetchval("SELECT count(*) FROM incident.outbox WHERE published_at IS NOT NULL")
        await conn.close()
        assert published_rows >= total, f"only {published_rows} of {total} events published"
        latencies.sort()
        return {
            "incidents": total,
            "concurrency": concurrency,
            "http_per_second": round(total / (http_done - started), 1),
            "committed_and_published_per_second": round(total / (published - started), 1),
            "request_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
            "request_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        }
    finally:
        stack.stop_all()
