"""The SLA engine's scale targets, on a real PostgreSQL and Kafka:

    python -m bench.sla_scale clocks|breaches|replay|fold|all [-n N] [--profile] [--in-process]
                              [--review-open] [--spread]

- clocks: ONE sla-svc process holds 1,000,000 running clocks in under 1 GB. The clocks table is
  filled with SQL (the `state` JSON built the way ClockState.to_dict() writes it, checked against
  the fold), sla-svc is started and loads every timer at start-up; its VmRSS and VmHWM are read
  from /proc once it logs "sla-svc timers running: N clocks loaded". The count behind a compliance
  refresh (repository.compliance_counts) over those clocks is timed too.
- breaches: 10,000 clocks breaching in the same second fire at most 500 ms late at p99: all on the second's
  first instant, or with --spread evenly over the second (each late by its own deadline). 10,000
  `itsm.incident.opened` events go to Kafka with opened_at = deadline - target; every clock must exist before
  the deadline. sla-svc writes each breach ahead of its instant (10 s, handlers.Clocks.prepare) and its relay
  publishes it then: a breach fires when it is on Kafka (the outbox row's published_at, set once the broker
  acknowledged it). The timers record the clocks breached right after (their state, compliance, the review):
  a poller counts the clocks recorded breached, taking them as recorded in the order they fell due, and the
  CPU sla-svc and PostgreSQL spend meanwhile is measured. SLA_TIMER_BATCH_SIZE / SLA_TIMER_CONCURRENCY
  in the environment reach the sla-svc process. --in-process (or --profile, with cProfile): the
  sla-svc process is stopped once the clocks are stored and the app runs in this process, so that
  each step of the timers' transactions at the instant is timed. --review-open: the agreement already has an
  open service review (the first breaches do not open one).
- replay: `sla-svc rebuild` replays at least 50,000 events per second: 50,000 incidents x 4 events
  (opened, in_progress, on_hold, resolved) are produced, then `rebuild()` runs as the command does
  (its worker processes replay the partitions) and reports the time of each step (Kafka read +
  decode, facts stored, fold, clocks stored, ...); reading the topics without parsing and
  replay_topics() alone, in one process, are timed beside it. --profile: every partition is
  replayed in the benchmark's process under cProfile.
- fold: the replay's CPU per incident for its two clocks, folded and made into rows, in this process alone (no
  Kafka or PostgreSQL needed): `python -m bench.sla_scale fold`.

Service ports: bench.common (ITSM_BENCH_PORT_OFFSET); logs go to bench/results/sla_scale/.
"""

import argparse
import asyncio
import contextlib
import cProfile
import inspect
import io
import json
import os
import pstats
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from itsm_events import new_event, schemas, to_kafka, topics

from .common import RESULTS, percentile, start_stack

LOGS = RESULTS / "sla_scale"


# helpers ---------------------------------------------------------------------------------------


def memory_of(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of a process, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024  # kB -> MiB
    return {"rss_mb": round(fields["VmRSS"], 1), "peak_mb": round(fields["VmHWM"], 1)}


async def wait_for_log(path: Path, offset: int, pattern: str, *, timeout: float, process=None) -> re.Match:
    """The first match of `pattern` in the log written after `offset`."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while loop.time() < give_up:
        with open(path, "rb") as log_file:
            log_file.seek(offset)
            text = log_file.read().decode(errors="replace")
        if match := re.search(pattern, text):
            return match
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the process exited with {process.returncode}; see {path}")
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{pattern!r} did not appear in {path} within {timeout:.0f}s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds(parent: int) -> float:
    """CPU time so far of the live children of a process (PostgreSQL: the postmaster's backends and workers)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent:
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def log_offset(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def problems_in_log(path: Path, offset: int) -> dict[str, int]:
    """How often each ERROR or WARNING message was logged after `offset`."""
    with open(path, "rb") as log_file:
        log_file.seek(offset)
        lines = log_file.read().decode(errors="replace").splitlines()
    counts: dict[str, int] = {}
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("level") in ("ERROR", "WARNING"):
            message = f"{record['level']} {record.get('logger')}: {record.get('message', '')[:160]}"
            counts[message] = counts.get(message, 0) + 1
    return counts


async def create_agreement(client: httpx.AsyncClient, base_url: str, **body) -> dict:
    response = await client.post(base_url + "/v1/agreements", json={"name": "bench", **body})
    response.raise_for_status()
    return response.json()


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def fast_producer(bootstrap_servers: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=20,
                            max_batch_size=512 * 1024, max_request_size=8 * 1024 * 1024)


async def produce(bootstrap_servers: str, records: list[tuple[bytes, list, bytes]]) -> float:
    """Send (key, headers, value) records to the incident topic; the seconds until all are acknowledged."""
    producer = fast_producer(bootstrap_servers)
    await producer.start()
    try:
        started = time.perf_counter()
        pending = []
        for key, headers, value in records:
            pending.append(await producer.send(topics.INCIDENT, value=value, key=key, headers=headers))
            if len(pending) >= 20000:
                await asyncio.gather(*pending)
                pending = []
        await producer.flush()
        await asyncio.gather(*pending)
        return time.perf_counter() - started
    finally:
        await producer.stop()


def record_of(data, incident_id: str) -> tuple[bytes, list, bytes]:
    headers, value = to_kafka(new_event(data, source="/bench", subject=incident_id))
    return incident_id.encode(), list(headers.items()), value


# 1. one process holds 1,000,000 running clocks ---------------------------------------------------

CLOCKS = 1_000_000
CLOCK_TARGET = timedelta(days=7)  # resolution P3: its first warning (50 %) is 3.5 days after opening
FILL_CHUNK = 100_000


def _iso_sql(expr: str) -> str:
    """datetime.isoformat() of a whole-second UTC instant, in SQL."""
    return f"""to_char(({expr}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"')"""


# Each clock i: incident opened (now - i % 86400 s), running on a 7-day P3 resolution target, the state
# exactly as ClockState.to_dict() writes it for that opening (see check_filled_state).
FILL_SQL = f"""
WITH s AS (
    SELECT i, opened, opened + $4 * interval '1 second' AS deadline, opened + $5 * interval '1 second' AS next_due
    FROM generate_series($1::bigint, $2::bigint) AS i,
         LATERAL (SELECT $3::timestamptz - (i % 86400) * interval '1 second' AS opened) AS o
)
INSERT INTO sla.clocks (id, agreement_id, incident_id, service_id, customer_id, metric, priority, target_seconds,
                        calendar_id, calendar_version, stage, started_at, deadline, warnings_fired, breached,
                        breached_at, completed_at, next_due_at, state, published)
SELECT md5('bench-clock/' || i)::uuid::text, $6, md5('bench-incident/' || i)::uuid::text, $7, NULL,
       'resolution', 3, $4, '24x7', 1, 'running', opened, deadline, 0, false, NULL, NULL, next_due,
       jsonb_build_object(
           'metric', 'resolution', 'priority', 3, 'target_seconds', $8::jsonb,
           'started_at', {_iso_sql('opened')}, 'stage', 'running', 'accumulated', '0.0'::jsonb,
           'running_since', {_iso_sql('opened')}, 'paused', false, 'stopped', false,
           'breached_at', NULL, 'completed_at', NULL, 'last_change_at', {_iso_sql('opened')},
           'deadline', {_iso_sql('deadline')}, 'warned', '[]'::jsonb, 'next_due', {_iso_sql('next_due')},
           'status', 'new',
           'timeline', jsonb_build_array(jsonb_build_object(
               'kind', 'started', 'at', {_iso_sql('opened')},
               'details', jsonb_build_object('priority', 3, 'target_seconds', $8::jsonb))))::text,
       json_build_array('started:' || {_iso_sql('opened')})::text
FROM s
"""


async def fill_clocks(database_url: str, *, agreement_id: str, service_id: str, now: datetime, clocks: int) -> float:
    """Insert `clocks` running clocks with SQL; the seconds it took."""
    target = CLOCK_TARGET.total_seconds()
    conn = await asyncpg.connect(database_url)
    try:
        started = time.perf_counter()
        for lo in range(1, clocks + 1, FILL_CHUNK):
            hi = min(clocks, lo + FILL_CHUNK - 1)
            await conn.execute(FILL_SQL, lo, hi, now, target, target * 0.5, agreement_id, service_id,
                               json.dumps(target))
        await conn.execute("ANALYZE sla.clocks")
        return time.perf_counter() - started
    finally:
        await conn.close()


async def check_filled_state(database_url: str, agreement: dict, now: datetime, clocks: int):
    """The SQL-built rows equal what sla-svc itself would save for the same opening (fold -> to_dict)."""
    from sla_svc.domain.agreement import Agreement, Target
    from sla_svc.domain.calendar import BUILT_IN
    from sla_svc.domain.fold import Fact, fold

    spec = Agreement(id=agreement["id"], name="bench", service_id=agreement["service_id"],
                     targets=(Target(metric="resolution", priority=3, within=CLOCK_TARGET),)).clock_specs[0]
    conn = await asyncpg.connect(database_url)
    try:
        for i in sorted({1, 2, 86_400, 86_401, clocks // 2, clocks} & set(range(1, clocks + 1))):
            row = await conn.fetchrow(
                "SELECT * FROM sla.clocks WHERE id = md5('bench-clock/' || $1::bigint)::uuid::text", i)
            opened = now - timedelta(seconds=i % 86400)
            expected = fold(spec, BUILT_IN["24x7"], [Fact(event_id="e", kind="opened", at=opened, priority=3,
                                                           status="new", service_id=agreement["service_id"])], now)
            assert json.loads(row["state"]) == expected.to_dict(), f"clock {i}: the SQL state differs from the fold"
            assert (row["next_due_at"], row["deadline"], row["stage"]) == (
                expected.next_due, expected.deadline, str(expected.stage)), f"clock {i}: columns differ"
    finally:
        await conn.close()


async def run_clocks(clocks: int = CLOCKS) -> dict:
    stack = await start_stack(extra_env={"LOG_LEVEL": "INFO"})  # INFO: the "timers running" line
    stack.log_dir = LOGS
    log = stack.log("sla-svc")
    loaded = r"sla-svc timers running: (\d+) clocks loaded"
    try:
        offset = log_offset(log)
        stack.start("sla-svc")
        await wait_for_log(log, offset, loaded, timeout=120, process=stack.processes["sla-svc"])
        baseline = memory_of(stack.processes["sla-svc"].pid)
        service_id = f"bench-mem-{uuid.uuid4().hex[:6]}"
        async with httpx.AsyncClient(timeout=30) as client:
            agreement = await create_agreement(client, stack.url("sla-svc"), service_id=service_id,
                                               targets=[{"metric": "resolution", "priority": 3, "within": "P7D"}],
                                               effective_from=(datetime.now(UTC) - timedelta(days=30)).isoformat())
        stack.stop_all()

        now = datetime.now(UTC).replace(microsecond=0)
        fill_seconds = await fill_clocks(stack.database_url, agreement_id=agreement["id"], service_id=service_id,
                                         now=now, clocks=clocks)
        await check_filled_state(stack.database_url, agreement, now, clocks)
        conn = await asyncpg.connect(stack.database_url)
        try:
            stored = await conn.fetchval("SELECT count(*) FROM sla.clocks WHERE next_due_at > now()")
            table_mb = await conn.fetchval("SELECT pg_total_relation_size('sla.clocks')") / 2 ** 20
        finally:
            await conn.close()
        assert stored == clocks, f"{stored} running clocks stored, not {clocks}"

        offset = log_offset(log)
        started = time.perf_counter()
        stack.start("sla-svc")
        process = stack.processes["sla-svc"]
        ready_seconds = time.perf_counter() - started
        match = await wait_for_log(log, offset, loaded, timeout=600, process=process)
        load_seconds = time.perf_counter() - started
        assert int(match.group(1)) == clocks, f"sla-svc loaded {match.group(1)} clocks, not {clocks}"
        at_load = memory_of(process.pid)
        await asyncio.sleep(5)  # settled: the timers are held, nothing fires for days
        settled = memory_of(process.pid)
        recount = await compliance_recount_seconds(stack.database_url, agreement["id"], now)
        async with httpx.AsyncClient(timeout=30) as client:
            (await client.get(stack.url("sla-svc") + "/readyz")).raise_for_status()
        problems = problems_in_log(log, offset)
        return {
            "clocks": clocks,
            "fill_seconds": round(fill_seconds, 1),
            "clocks_table_mb": round(table_mb),
            "baseline_rss_mb": baseline["rss_mb"],
            "ready_seconds": round(ready_seconds, 1),
            "load_seconds": round(load_seconds, 1),
            "rss_mb": settled["rss_mb"],
            "rss_at_load_mb": at_load["rss_mb"],
            "peak_mb": settled["peak_mb"],
            "bytes_per_clock": round((settled["rss_mb"] - baseline["rss_mb"]) * 2 ** 20 / clocks),
            "peak_bytes_per_clock": round((settled["peak_mb"] - baseline["rss_mb"]) * 2 ** 20 / clocks),
            "target_rss_mb": 1024,
            "met": settled["peak_mb"] < 1024,
            "compliance_recount_seconds": round(recount, 2),
            **({"log_problems": problems} if problems else {}),
        }
    finally:
        stack.stop_all()


async def compliance_recount_seconds(database_url: str, agreement_id: str, now: datetime) -> float:
    """How long the count behind a refresh of the agreement's compliance takes (repository.compliance_counts over
    the month; the second of two runs, the table cached)."""
    from itsm_runtime.db import create_engine
    from sla_svc.db import repository

    engine = create_engine(database_url.replace("postgresql://", "postgresql+asyncpg://"), schema="sla",
                           pool_size=1)
    month = now.replace(day=1, hour=0, minute=0, second=0)
    try:
        async with engine.connect() as conn:
            for _ in range(2):
                began = time.perf_counter()
                await repository.compliance_counts(conn, agreement_id, month, month + timedelta(days=31))
                took = time.perf_counter() - began
        return took
    finally:
        await engine.dispose()


# 2. 10,000 clocks breach in the same second -------------------------------------------------------

BREACHES = 10_000
BREACH_TARGET = timedelta(minutes=10)  # the 50 % warning is 5 minutes before the deadline: crossed on ingest
BREACH_LEAD = timedelta(seconds=120)  # 10,000 opened events take ~50 s to ingest here
POLL = 0.02


async def watch_recorded(database_url: str, agreement_id: str, expected: int, until: float) -> list[tuple[float, int]]:
    """(wall time, clocks of the agreement recorded breached by then), polled until all are or `until`."""
    samples: list[tuple[float, int]] = []
    conn = await asyncpg.connect(database_url)
    loop = asyncio.get_running_loop()
    try:
        while (not samples or samples[-1][1] < expected) and loop.time() < until:
            count = await conn.fetchval("SELECT count(*) FROM sla.clocks WHERE agreement_id = $1 AND breached",
                                        agreement_id)
            samples.append((time.time(), count))
            await asyncio.sleep(POLL)
    finally:
        await conn.close()
    return samples


def recorded_late(samples: list[tuple[float, int]], due: list[float]) -> list[float]:
    """How late each clock was recorded breached, taking them as recorded in the order they fell due (the
    k-th recorded when the count first reached k)."""
    late, k = [], 0
    for at, count in samples:
        while k < min(count, len(due)):
            late.append(at - due[k])
            k += 1
    return sorted(late)


@contextlib.asynccontextmanager
async def service_in_process(database_url: str, kafka: str, *, clocks: int, until: datetime):
    """sla-svc (its whole app: consumers, relay, timers) in this process, once it holds `clocks` timers."""
    from sla_svc.main import create_app
    from sla_svc.settings import Settings

    app = create_app(Settings(database_url=database_url, kafka_bootstrap_servers=kafka, log_level="WARNING"))
    async with app.router.lifespan_context(app):
        scheduler = app.state.runtime.state["clocks"].scheduler
        while len(scheduler) < clocks and datetime.now(UTC) < until:
            await asyncio.sleep(0.05)
        assert len(scheduler) >= clocks, f"sla-svc in-process loaded {len(scheduler)} of {clocks} timers in time"
        yield


def fire_steps() -> list[tuple[object, str]]:
    """The steps of the clock timers (handlers.Clocks.prepare ahead of the instant, .fire at it), and of the relay
    that publishes what they wrote, to time."""
    from itsm_events import KafkaTransport, OutboxRelay, UnitOfWork
    from sla_svc import handlers
    from sla_svc.db import repository

    return [(repository, "lock_clocks"), (repository, "get_clocks"), (handlers, "record_breaches"),
            (repository, "save_clocks"), (UnitOfWork, "commit"), (handlers.Clocks, "_move_on"),
            (handlers.Clocks, "fire"), (handlers.Clocks, "prepare"),
            (OutboxRelay, "publish", lambda args: "relay: publish"),
            (KafkaTransport, "hand_over", lambda args: "relay: hand_over (records queued)")]


def print_profile(profiler: cProfile.Profile, path: Path, *, sort: str = "tottime", limit: int = 30) -> None:
    profiler.dump_stats(path)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(limit)
    print(out.getvalue(), flush=True)


async def run_breaches(clocks: int = BREACHES, lead: timedelta = BREACH_LEAD, review_open: bool = False,
                       in_process: bool = False, profile: bool = False, spread: bool = False) -> dict:
    """`spread`: the deadlines are spread evenly over the second (clock i due i/clocks s after it) instead of
    all falling on its first instant, and each breach is late by the time from its own deadline.
    `review_open`: the agreement already has an open service review, so that no breach opens one
    (before 2c1bb67 concurrent fire batches each opened one and collided on uq_open_review_per_agreement).
    `in_process`: once the clocks are stored, the sla-svc process stops and sla-svc runs in this process,
    so that each step of the timers' transactions is timed; `profile`: that, under cProfile."""
    in_process = in_process or profile
    stack = await start_stack()
    stack.log_dir = LOGS
    log = stack.log("sla-svc")
    offset = log_offset(log)
    stack.start("sla-svc")
    try:
        service_id = f"bench-breach-{uuid.uuid4().hex[:6]}"
        async with httpx.AsyncClient(timeout=30) as client:
            agreement = await create_agreement(
                client, stack.url("sla-svc"), service_id=service_id, warning_thresholds=[0.5],
                # the incidents are back-dated by the target: the agreement must be in force by then
                effective_from=(datetime.now(UTC) - timedelta(days=1)).isoformat(),
                targets=[{"metric": "resolution", "priority": 1, "within": "PT10M"}])
        if review_open:
            conn = await asyncpg.connect(stack.database_url)
            try:
                await conn.execute("INSERT INTO sla.reviews (id, agreement_id, service_id, status, opened_at) "
                                   "VALUES ($1, $2, $3, 'open', now())", str(uuid.uuid4()), agreement["id"],
                                   service_id)
            finally:
                await conn.close()
        deadline = (datetime.now(UTC) + lead).replace(microsecond=0)
        started = time.perf_counter()
        records, due = [], {}  # incident id -> its clock's deadline
        for i in range(clocks):
            incident_id = str(uuid.uuid4())
            due[incident_id] = deadline + (timedelta(seconds=i / clocks) if spread else timedelta(0))
            records.append(record_of(schemas.IncidentOpened(
                incident_id=incident_id, number=f"INC{i:07d}", title="bench", service_id=service_id, impact=1,
                urgency=1, priority=1, status="new", opened_at=due[incident_id] - BREACH_TARGET), incident_id))
        build_seconds = time.perf_counter() - started
        produce_seconds = await produce(stack.kafka, records)

        conn = await asyncpg.connect(stack.database_url)
        try:
            loop = asyncio.get_running_loop()
            while True:  # every clock stored, due at the deadline
                ready = await conn.fetchval("SELECT count(*) FROM sla.clocks WHERE agreement_id = $1 "
                                            "AND next_due_at >= $2 AND next_due_at < $2 + interval '1 second'",
                                            agreement["id"], deadline)
                if ready >= clocks or datetime.now(UTC) >= deadline:
                    break
                await asyncio.sleep(0.1)
            ingested_seconds = time.perf_counter() - started
            margin = (deadline - datetime.now(UTC)).total_seconds()
            assert ready == clocks, f"only {ready} of {clocks} clocks existed when the deadline came"
            postmaster = int(Path(f"/proc/{await conn.fetchval('SELECT pg_backend_pid()')}/stat").read_text()
                             .rsplit(")", 1)[1].split()[1])
            profiler, spent = cProfile.Profile() if profile else None, {}
            async with contextlib.AsyncExitStack() as timers:
                if in_process:
                    stack.stop_all()
                    await timers.enter_async_context(service_in_process(
                        stack.database_url, stack.kafka, clocks=clocks, until=deadline - timedelta(seconds=2)))
                await asyncio.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds() - 1))
                if in_process:
                    spent = timers.enter_context(timed_calls(fire_steps()))
                if profiler:
                    profiler.enable()
                firing = os.getpid() if in_process else stack.processes["sla-svc"].pid
                cpu_before = (cpu_seconds(firing), children_cpu_seconds(postmaster), time.perf_counter())
                samples = await watch_recorded(stack.database_url, agreement["id"], clocks, loop.time() + 2 + 120)
                cpu = (cpu_seconds(firing) - cpu_before[0], children_cpu_seconds(postmaster) - cpu_before[1],
                       time.perf_counter() - cpu_before[2])
                if profiler:
                    profiler.disable()
                    print_profile(profiler, RESULTS / "sla_breaches.prof")
                loop_give_up = loop.time() + 60
                rows = []
                while loop.time() < loop_give_up:  # wait for the relay to publish them all
                    rows = await conn.fetch("SELECT id, key, created_at, published_at FROM sla.outbox "
                                            "WHERE event_type = 'itsm.sla.breached' ORDER BY id")
                    if len(rows) >= clocks and all(r["published_at"] for r in rows):
                        break
                    await asyncio.sleep(0.2)
        finally:
            await conn.close()

        assert len(rows) == clocks, f"only {len(rows)} of {clocks} breaches were committed"
        assert len({r["key"] for r in rows}) == clocks, "a clock breached twice or another not at all"
        assert samples and samples[-1][1] == clocks, f"{samples[-1][1] if samples else 0} of {clocks} recorded"
        published = sorted((r["published_at"] - due[r["key"]]).total_seconds() for r in rows)
        recorded = recorded_late(samples, sorted(at.timestamp() for at in due.values()))
        problems = problems_in_log(log, offset)
        return {
            "clocks": clocks,
            "deadlines": "spread evenly over the second" if spread else "all at the same instant",
            "review_open_before": review_open,
            "build_events_seconds": round(build_seconds, 2),
            "produce_seconds": round(produce_seconds, 2),
            "all_clocks_stored_seconds": round(ingested_seconds, 2),
            "ingest_per_second": round(clocks / ingested_seconds),
            "clocks_stored_before_deadline_s": round(margin, 1),
            "breaches_written_ahead": sum(r["created_at"] < due[r["key"]] for r in rows),
            "cpu_seconds_while_firing": {"sla-svc" if not in_process else "sla-svc in this process (+ poller)":
                                         round(cpu[0], 2), "postgres": round(cpu[1], 2), "wall": round(cpu[2], 2)},
            "fire_batches_failed": sum(n for message, n in problems.items() if "clock timers failed" in message),
            "published_p50_ms": ms(percentile(published, 50)),
            "published_p99_ms": ms(percentile(published, 99)),
            "published_max_ms": ms(published[-1]),
            "recorded_p50_ms": ms(percentile(recorded, 50)),
            "recorded_p99_ms": ms(percentile(recorded, 99)),
            "recorded_max_ms": ms(recorded[-1]),
            "recorded_resolution_ms": ms(POLL),
            **({"sla_svc_in_process": True, "under_cprofile": profile} if in_process else {}),
            "target_p99_ms": 500,
            "met": percentile(published, 99) <= 0.5,
            **({"in_process_step_seconds (summed over concurrent batches)": {
                k: round(v, 2) for k, v in spent.items()}} if in_process else {}),
            **({"log_problems": problems} if problems else {}),
        }
    finally:
        stack.stop_all()


# 3. a rebuild replays at least 50,000 events per second ------------------------------------------

REPLAY_INCIDENTS = 50_000
RESPONSE = {1: timedelta(minutes=15), 2: timedelta(minutes=30), 3: timedelta(hours=1), 4: timedelta(hours=4)}
RESOLUTION = {1: timedelta(hours=1), 2: timedelta(hours=4), 3: timedelta(days=1), 4: timedelta(days=3)}


def replay_agreement(service_id: str, *, effective_from: datetime):
    """The replayed service's agreement: a response and a resolution target per priority."""
    from sla_svc.domain.agreement import Agreement, Target

    return Agreement(id=str(uuid.uuid4()), name="bench replay", service_id=service_id, effective_from=effective_from,
                     targets=tuple([Target(metric="response", priority=p, within=w) for p, w in RESPONSE.items()]
                                   + [Target(metric="resolution", priority=p, within=w)
                                      for p, w in RESOLUTION.items()]))


def replay_records(service_id: str, incidents: int, base: datetime) -> list[tuple[bytes, list, bytes]]:
    """The replayed incidents' events as Kafka records (`replay_events`)."""
    return [record_of(data, incident_id) for incident_id, data in replay_events(service_id, incidents, base)]


def replay_events(service_id: str, incidents: int, base: datetime) -> Iterator[tuple[str, object]]:
    """(incident id, event data). Per incident: opened, in_progress (late for one in 7: responses and P1/P2
    resolutions breach), on_hold (pauses the resolution clock) and resolved."""
    for n in range(incidents):
        incident_id = str(uuid.uuid4())
        priority = 1 + n % 4
        opened = base + timedelta(seconds=20 * n)
        started = opened + (timedelta(minutes=90) if n % 7 == 0 else timedelta(minutes=10))
        held = started + timedelta(minutes=20)
        resolved = held + timedelta(hours=2)
        common = {"incident_id": incident_id, "service_id": service_id, "priority": priority}
        for data in (
            schemas.IncidentOpened(number=f"INC{n:07d}", title="bench", impact=priority, urgency=priority,
                                   status="new", opened_at=opened, **common),
            schemas.IncidentStatusChanged(from_status="new", to_status="in_progress", changed_at=started, **common),
            schemas.IncidentStatusChanged(from_status="in_progress", to_status="on_hold", hold_reason="vendor",
                                          changed_at=held, **common),
            schemas.IncidentStatusChanged(from_status="on_hold", to_status="resolved", changed_at=resolved,
                                          **common),
        ):
            yield incident_id, data


async def kafka_read_only(bootstrap_servers: str) -> tuple[int, float]:
    """(records, seconds) to fetch the replayed topics from the first offset to the end, parsing nothing."""
    from sla_svc.rebuild import TOPICS, read_topics

    count = 0

    def take(records) -> None:
        nonlocal count
        count += len(records)

    started = time.perf_counter()
    await read_topics(bootstrap_servers, TOPICS, take)
    return count, time.perf_counter() - started


@contextlib.contextmanager
def timed_calls(targets: list[tuple]):
    """Wrap each `module.function` (async or not; those missing are skipped) to add up its wall time.

    A target is (module, name) or (module, name, label) where label(args) names the total; yields
    name -> seconds, and restores the functions after.
    """
    totals: dict[str, float] = {}
    originals = []
    for module, name, *label in targets:
        original = getattr(module, name, None)
        if original is None:
            continue
        originals.append((module, name, original))
        key = label[0] if label else (lambda args, _name=name: _name)

        def add(args, started, _key=key):
            totals[_key(args)] = totals.get(_key(args), 0.0) + time.perf_counter() - started

        if inspect.iscoroutinefunction(original):
            def wrapper(*args, _original=original, _add=add, **kwargs):
                async def call():
                    started = time.perf_counter()
                    try:
                        return await _original(*args, **kwargs)
                    finally:
                        _add(args, started)
                return call()
        else:
            def wrapper(*args, _original=original, _add=add, **kwargs):
                started = time.perf_counter()
                try:
                    return _original(*args, **kwargs)
                finally:
                    _add(args, started)

        setattr(module, name, wrapper)
    try:
        yield totals
    finally:
        for module, name, original in originals:
            setattr(module, name, original)


async def run_replay(incidents: int = REPLAY_INCIDENTS, profile: bool = False) -> dict:
    import sqlalchemy as sa

    from itsm_runtime.db import create_engine, migrate
    from itsm_runtime.testing import create_database
    from sla_svc import rebuild as rebuild_module
    from sla_svc.db import MIGRATIONS, repository
    from sla_svc.settings import Settings

    database_url = await create_database(os.environ["ITSM_TEST_DATABASE_URL"], prefix="bench")
    kafka = os.environ["ITSM_TEST_KAFKA"]
    service_id = f"bench-replay-{uuid.uuid4().hex[:6]}"
    base = (datetime.now(UTC) - timedelta(days=20)).replace(microsecond=0)
    settings = Settings(database_url=database_url, kafka_bootstrap_servers=kafka, db_schema="sla")
    engine = create_engine(settings.database_url, schema="sla")
    try:  # the live schema: migrated, holding the agreement the rebuild copies
        await migrate(engine, migrations_dir=MIGRATIONS, schema="sla")
        async with engine.begin() as conn:
            await repository.add_agreement(conn, replay_agreement(service_id, effective_from=base - timedelta(days=1)),
                                           created_at=datetime.now(UTC))
    finally:
        await engine.dispose()

    started = time.perf_counter()
    records = replay_records(service_id, incidents, base)
    build_seconds = time.perf_counter() - started
    produce_seconds = await produce(kafka, records)
    produced = len(records)
    del records

    read_records, read_seconds = await kafka_read_only(kafka)
    started = time.perf_counter()
    replayed = await rebuild_module.replay_topics(kafka)
    replay_seconds = time.perf_counter() - started
    del replayed

    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    # under the profiler, every partition is replayed in this process, one after the other
    report = await rebuild_module.rebuild(settings, schema="sla_bench_rebuild", replace=True,
                                          processes=0 if profiler else None)
    if profiler:
        profiler.disable()

    rebuilt = create_engine(settings.database_url, schema="sla_bench_rebuild")
    try:
        async with rebuilt.connect() as conn:
            stages = dict((await conn.execute(sa.text(
                "SELECT stage || '/' || CASE WHEN breached THEN 'breached' ELSE 'met' END, count(*) "
                "FROM clocks GROUP BY 1"))).all())
    finally:
        await rebuilt.dispose()
    assert report.incidents >= incidents and report.clocks >= 2 * incidents, report

    result = {
        "incidents": incidents,
        "events_produced": produced,
        "build_events_seconds": round(build_seconds, 1),
        "produce_per_second": round(produced / produce_seconds),
        "records": report.records,
        "clocks": report.clocks,
        "clock_outcomes": stages,
        "rebuild_seconds": round(report.seconds, 2),
        "records_per_second": round(report.records_per_second),
        "target_per_second": 50_000,
        "met": report.records_per_second >= 50_000,
        "processes": report.processes,
        # the main process's steps in wall time; "workers: ..." added up over the worker processes, which share
        # the cores with each other and with PostgreSQL
        "breakdown_seconds": {name: round(seconds, 2) for name, seconds in report.step_seconds.items()},
        "kafka_read_only_per_second": round(read_records / read_seconds),
        "replay_topics_alone_per_second": round(report.records / replay_seconds),
    }
    if profiler:
        print_profile(profiler, RESULTS / "sla_replay.prof")
        result["profile"] = str(RESULTS / "sla_replay.prof")
    return result


FOLD_INCIDENTS = 20_000


async def run_fold(incidents: int = FOLD_INCIDENTS, rounds: int = 5) -> dict:
    """The replay's CPU per incident in this process, without Kafka or PostgreSQL: its two clocks folded
    (handlers.Clocks.fold, as a rebuild's worker calls it) and made into rows (published names, JSON), over the
    replay's incidents; the best of `rounds`, the garbage collector off as in the workers."""
    import gc

    from sla_svc.calendars import CalendarStore
    from sla_svc.db import repository
    from sla_svc.handlers import Clocks, fact_of

    base = datetime(2026, 11, 2, tzinfo=UTC)
    agreement = replay_agreement("bench-fold", effective_from=base)
    by_incident: dict[str, list] = {}
    for incident_id, data in replay_events(agreement.service_id, incidents, base):
        by_incident.setdefault(incident_id, []).append(fact_of(str(uuid.uuid4()), data)[1])
    folder, now = Clocks(None, CalendarStore(fixed=True)), datetime.now(UTC)
    fold_us, rows_us = [], []
    gc.disable()
    try:
        for _ in range(rounds):
            started, folded = time.perf_counter(), []
            for incident_id, facts in by_incident.items():
                folded += await folder.fold(None, incident_id, facts, [agreement], [], now)
            middle = time.perf_counter()
            for clock in folded:
                clock.published = {e.key for e in clock.state.timeline if e.at <= now}
            repository.clock_records(folded)
            fold_us.append((middle - started) * 1e6 / incidents)
            rows_us.append((time.perf_counter() - middle) * 1e6 / incidents)
    finally:
        gc.enable()
    return {"incidents": incidents, "clocks": len(folded), "rounds": rounds,
            "fold_us_per_incident": round(min(fold_us), 1), "rows_us_per_incident": round(min(rows_us), 1)}


# all three ----------------------------------------------------------------------------------------


async def run() -> dict:
    """All three, for `python -m bench`."""
    return {"clocks": await run_clocks(), "breaches": await run_breaches(),
            "breaches_spread": await run_breaches(spread=True), "replay": await run_replay()}


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sla_scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["clocks", "breaches", "replay", "fold", "all"])
    parser.add_argument("-n", type=int, help="clocks, breaching clocks or incidents (default: the target's)")
    parser.add_argument("--profile", action="store_true",
                        help="replay: cProfile the in-process rebuild; breaches: --in-process under cProfile")
    parser.add_argument("--review-open", action="store_true",
                        help="breaches: the agreement has an open service review before the breaches")
    parser.add_argument("--in-process", action="store_true",
                        help="breaches: stop the sla-svc process once the clocks are stored, run sla-svc here")
    parser.add_argument("--spread", action="store_true",
                        help="breaches: the deadlines spread evenly over the second, not all at its start")
    args = parser.parse_args(argv)
    runs = {"clocks": lambda: run_clocks(args.n or CLOCKS),
            "breaches": lambda: run_breaches(args.n or BREACHES, review_open=args.review_open,
                                             in_process=args.in_process, profile=args.profile,
                                             spread=args.spread),
            "replay": lambda: run_replay(args.n or REPLAY_INCIDENTS, profile=args.profile),
            "fold": lambda: run_fold(args.n or FOLD_INCIDENTS)}
    results = {}
    for name in (["clocks", "breaches", "replay"] if args.what == "all" else [args.what]):
        results[name] = await runs[name]()
        print(json.dumps({f"sla_{name}": results[name]}), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"sla_scale_{args.what}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
