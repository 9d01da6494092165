"""Health signals per second through cmdb-svc's HTTP API on a graph of 10,000 CIs.

The graph (100 business services, 2,000 applications, 1,000 databases, 1,000 clusters of four
servers with a redundancy rule, the database servers and 900 switches) is imported in one
request. Then batches of signals for random servers and switches are posted, a few batches in
flight at once; `churn` of them change the CI's status, so statuses propagate to clusters,
applications and services and events are published. Counted: signals per second over HTTP
(committed), and until every event they caused is published to Kafka.
"""

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from .common import percentile, start_stack

SERVICES, APPS_PER_SERVICE, CLUSTERS, NODES_PER_CLUSTER, DATABASES, SWITCHES = 100, 20, 1000, 4, 1000, 900
BATCHES, BATCH_SIZE, IN_FLIGHT = 40, 1000, 2


def graph() -> tuple[dict, list[str]]:
    """The import body and the ids of the leaf CIs that monitoring reports on."""
    cis, relationships, leaves = [], [], []

    def ci(id_: str, type_: str, **fields) -> str:
        cis.append({"id": id_, "name": id_, "type": type_} | fields)
        return id_

    def rel(source: str, type_: str, target: str) -> None:
        relationships.append({"source_id": source, "target_id": target, "type": type_})

    clusters = [ci(f"cluster-{c}", "cluster", redundancy={"min_up": 2} if c % 2 else {"min_up_percent": 50})
                for c in range(CLUSTERS)]
    for cluster in clusters:
        for n in range(NODES_PER_CLUSTER):
            leaves.append(ci(f"{cluster}-node-{n}", "server"))
            rel(leaves[-1], "member_of", cluster)
    databases = []
    for d in range(DATABASES):
        databases.append(ci(f"db-{d}", "database"))
        leaves.append(ci(f"db-{d}-host", "server"))
        rel(databases[-1], "runs_on", leaves[-1])
    switches = [ci(f"switch-{s}", "network") for s in range(SWITCHES)]
    leaves += switches
    for s in range(SERVICES):
        service = ci(f"service-{s}", "business_service", criticality=1 + s % 5)
        for a in range(APPS_PER_SERVICE):
            app = ci(f"app-{s}-{a}", "application")
            rel(service, "depends_on", app)
            index = s * APPS_PER_SERVICE + a
            rel(app, "runs_on", clusters[index % CLUSTERS])
            rel(app, "depends_on", databases[index % DATABASES])
            rel(app, "connects_to", switches[index % SWITCHES])
    return {"cis": cis, "relationships": relationships}, leaves


async def run(batches: int = BATCHES, batch_size: int = BATCH_SIZE, churn: float = 0.05,
              in_flight: int = IN_FLIGHT) -> dict:
    stack = await start_stack("cmdb-svc")
    try:
        base = stack.url("cmdb-svc")
        body, leaves = graph()
        rng = random.Random(7)
        async with httpx.AsyncClient(timeout=120) as client:
            started = time.perf_counter()
            (await client.post(base + "/v1/import", json=body)).raise_for_status()
            import_seconds = time.perf_counter() - started
            conn = await asyncpg.connect(stack.database_url)
            await wait_published(conn)

            # Every batch is one instant a second after the previous one, as a monitoring scrape would be.
            t0 = datetime.now(UTC) - timedelta(days=1)
            state = dict.fromkeys(leaves, "up")
            payloads = []
            for b in range(batches):
                observed_at = (t0 + timedelta(seconds=b)).isoformat()
                signals = []
                for ci_id in rng.sample(leaves, batch_size):
                    if rng.random() < churn:
                        state[ci_id] = rng.choice(["down", "degraded"]) if state[ci_id] == "up" else "up"
                    signals.append({"ci_id": ci_id, "status": state[ci_id], "observed_at": observed_at})
                payloads.append({"signals": signals})

            queue: asyncio.Queue[dict] = asyncio.Queue()
            for payload in payloads:
                queue.put_nowait(payload)
            latencies: list[float] = []
            changes = 0

            async def worker() -> None:
                nonlocal changes
                while not queue.empty():
                    payload = queue.get_nowait()
                    sent = time.perf_counter()
                    response = await client.post(base + "/v1/signals", json=payload)
                    response.raise_for_status()
                    latencies.append(time.perf_counter() - sent)
                    changes += len(response.json()["changes"])

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(in_flight)))
            committed = time.perf_counter()
            await wait_published(conn)
            published = time.perf_counter()
            availability_events = await conn.fetchval(
                "SELECT count(*) FROM cmdb.outbox WHERE event_type = 'itsm.cmdb.service_availability_changed'")
            await conn.close()
        total = batches * batch_size
        latencies.sort()
        return {
            "cis": len(body["cis"]),
            "relationships": len(body["relationships"]),
            "import_seconds": round(import_seconds, 2),
            "signals": total,
            "batch_size": batch_size,
            "in_flight": in_flight,
            "churn": churn,
            "ci_status_changes": changes,
            "service_availability_events": availability_events,
            "signals_per_second_committed": round(total / (committed - started), 1),
            "signals_per_second_published": round(total / (published - started), 1),
            "batch_p50_ms": round(percentile(latencies, 50) * 1000, 1),
            "batch_p99_ms": round(percentile(latencies, 99) * 1000, 1),
        }
    finally:
        stack.stop_all()


async def wait_published(conn: asyncpg.Connection, timeout: float = 300) -> None:
    deadline = time.perf_counter() + timeout
    while await conn.fetchval("SELECT count(*) FROM cmdb.outbox WHERE published_at IS NULL"):
        if time.perf_counter() > deadline:
            raise TimeoutError("cmdb-svc did not publish its outbox in time")
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    import json

    print(json.dumps(asyncio.run(run()), indent=2))
