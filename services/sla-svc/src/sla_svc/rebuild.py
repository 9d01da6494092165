"""`sla-svc rebuild`: the whole SLA state again from the consumed topics, into a fresh schema.

The SLA state is a fold over consumed events: clocks over incident facts, availability
objectives over service statuses. So a rebuild copies what people entered (agreements,
maintenance windows, service reviews) and which period reports were announced, replays the
incident and CMDB topics from their first offset, and computes the rest:
- clocks are folded once per incident as of now (fold.py), every timeline entry counted as published;
- live compliance is computed once per agreement at the end;
- availability objectives are checked at every instant the live service would check them: each
  status change and each instant a budget runs out or a burn-rate alert can change, so their
  breaches and alerts come out as they did live.
It all happens in one transaction, and nothing is published: the events the live service
published already went out, so the rebuilt outbox is emptied before the commit.
"""

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer

from itsm_events import UnitOfWork, schemas, topics
from itsm_events import registry
from itsm_events.envelope import VERSION_EXTENSION
from itsm_runtime.db import create_engine, migrate

from .objectives import Objectives, service_inputs, status_row
from .calendars import CalendarStore
from .compliance import Compliance
from .db import MIGRATIONS, repository
from .db.tables import clocks, incident_facts, platform, service_status
from .domain.fold import Fact
from .handlers import Clocks, fact_of, opening_of
from .reviews import BreachRef, record_breaches
from .settings import Settings

log = logging.getLogger("sla_svc.rebuild")
TOPICS = (topics.INCIDENT, topics.CMDB)
# copied as they are (in foreign-key order): what people entered, and which reports were announced
COPIED = ("calendars", "agreements", "maintenance_windows", "reviews", "review_breaches", "reports_published")
CONSUMED = {"itsm.incident.opened", "itsm.incident.status_changed", "itsm.incident.priority_changed",
            "itsm.cmdb.service_availability_changed"}
CHUNK = 5000


class SchemaInUse(RuntimeError):
    pass


@dataclass
class Replayed:
    facts: list[tuple[str, Fact]]
    statuses: list[dict]
    records: int = 0
    poison: int = 0


@dataclass(frozen=True)
class RebuildReport:
    schema: str
    records: int
    poison: int
    incidents: int
    clocks: int
    agreements_with_objectives: int
    seconds: float

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


async def replay_topics(bootstrap_servers: str, names=TOPICS) -> Replayed:
    """Every incident fact and service status on the topics, from the first offset to the end as of now."""
    replayed = Replayed(facts=[], statuses=[])

    def take(records) -> None:
        for record in records:
            _take(replayed, record)

    await read_topics(bootstrap_servers, names, take)
    return replayed


async def read_topics(bootstrap_servers: str, names, take: Callable[[list], None]) -> None:
    """Hand every record of the topics to `take`, a fetched batch at a time, from the first offset to the end
    as of now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_bytes=64 * 1024 * 1024,
                                max_partition_fetch_bytes=16 * 1024 * 1024)
    await consumer.start()
    try:
        existing = [name for name in names if name in await consumer.topics()]
        if not existing:
            return
        consumer.subscribe(existing)  # without a group: every partition is assigned to us
        loop = asyncio.get_running_loop()
        give_up = loop.time() + 30
        while not consumer.assignment() and loop.time() < give_up:
            await asyncio.sleep(0.05)
        partitions = sorted(consumer.assignment())
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        pending = {tp for tp in partitions if end[tp] > await consumer.position(tp)}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000, max_records=20000)
            for tp, records in batches.items():
                take(records)
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()


def _take(replayed: Replayed, record) -> None:
    """Keep a record sla-svc consumes, read straight from its CloudEvent headers and JSON value.

    The CloudEvents SDK and the registry's model take 24 µs a record, this 5 µs (measured), and the
    live consumer has already dead-lettered the records that are not valid events: a replay reads
    only what it needs, the type, id and version headers and the data, validated by its schema."""
    replayed.records += 1
    headers = dict(record.headers)
    event_type = headers.get("ce_type", b"").decode(errors="replace")
    if event_type not in CONSUMED:
        return
    try:
        model = registry.model_for(event_type, int(headers.get(f"ce_{VERSION_EXTENSION}", b"1")))
        event_id, data = headers["ce_id"].decode(), model.model_validate_json(record.value)
    except (KeyError, ValueError, registry.UnknownEventType):  # pydantic's ValidationError is a ValueError
        replayed.poison += 1
        return
    if isinstance(data, schemas.ServiceAvailabilityChanged):
        replayed.statuses.append(status_row(event_id, data))
    else:
        replayed.facts.append(fact_of(event_id, data))


async def rebuild(settings: Settings, *, schema: str, replace: bool = False) -> RebuildReport:
    """Rebuild sla-svc's state from `settings.db_schema` (entered data) and the topics into `schema`."""
    if schema == settings.db_schema:
        raise SchemaInUse("rebuild into a new schema, not the one the service runs on")
    started = time.perf_counter()
    engine = create_engine(settings.database_url, schema=schema)
    try:
        await _fresh_schema(engine, schema, replace=replace)
        await migrate(engine, migrations_dir=MIGRATIONS, schema=schema)
        replayed = await replay_topics(settings.kafka_bootstrap_servers)
        async with UnitOfWork(engine, platform["outbox"], source="/sla-svc") as uow:
            for table in COPIED:
                await uow.conn.execute(sa.text(
                    f'INSERT INTO "{schema}".{table} OVERRIDING SYSTEM VALUE '
                    f'SELECT * FROM "{settings.db_schema}".{table}'))
            await repository.copy_rows(uow.conn, incident_facts, repository.fact_rows(replayed.facts))
            await repository.copy_rows(uow.conn, service_status,
                                       list({r["event_id"]: r for r in reversed(replayed.statuses)}.values()))
            now = datetime.now(UTC)
            agreements = await repository.all_agreements(uow.conn)
            calendars = CalendarStore()
            incidents, folded = await _fold_clocks(uow, calendars, replayed.facts, agreements, now)
            with_objectives = [a for a in agreements if a.objectives]
            for agreement in with_objectives:
                await _check_objectives(uow, calendars, agreement, now)
            live = Compliance(None, calendars)
            for agreement in agreements:
                await live.store(uow, agreement)
            await uow.conn.execute(platform["outbox"].delete())
            await uow.commit()
    finally:
        await engine.dispose()
    return RebuildReport(schema=schema, records=replayed.records, poison=replayed.poison, incidents=incidents,
                         clocks=folded, agreements_with_objectives=len(with_objectives),
                         seconds=time.perf_counter() - started)


async def _fold_clocks(uow: UnitOfWork, calendars: CalendarStore, facts: list[tuple[str, Fact]], agreements,
                       now: datetime) -> tuple[int, int]:
    by_incident: dict[str, list[Fact]] = defaultdict(list)
    for incident_id, fact in facts:
        by_incident[incident_id].append(fact)
    by_service = defaultdict(list)
    for agreement in agreements:
        by_service[agreement.service_id].append(agreement)
    folder, batch, breaches, count = Clocks(None, calendars), [], [], 0
    for incident_id, mine in by_incident.items():
        opened = opening_of(mine)
        if opened is None:
            continue
        for clock in await folder.fold(uow.conn, incident_id, mine, by_service[opened.service_id], [], now):
            clock.published = {e.key for e in clock.state.timeline if e.at <= now}
            if clock.objective_id is None and clock.breached_at is not None and clock.breached_at <= now:
                breaches.append(BreachRef(agreement_id=clock.agreement_id, service_id=clock.service_id,
                                          kind="clock", ref_id=clock.id, incident_id=incident_id,
                                          breached_at=clock.breached_at))
            batch.append(clock)
        if len(batch) >= CHUNK:
            await repository.copy_rows(uow.conn, clocks, repository.clock_rows(batch))
            count, batch = count + len(batch), []
    await repository.copy_rows(uow.conn, clocks, repository.clock_rows(batch))
    await record_breaches(uow, breaches)
    return len(by_incident), count + len(batch)


async def _check_objectives(uow: UnitOfWork, calendars: CalendarStore, agreement, now: datetime) -> None:
    """Check the agreement's objectives at each instant the live service would have: status changes and timers."""
    objectives = Objectives(None, calendars)
    inputs = await service_inputs(uow.conn, agreement.service_id)
    # from when it was created, as the live service checks it then (routes ask for a check on creation)
    start = agreement.extra["created_at"]
    changes = inputs[0].changes_between(start, now + timedelta(microseconds=1))
    at = min(start, now)
    while True:
        due = await objectives.check(uow, agreement, at, inputs)
        later = [t for t in (*changes, *due) if at < t <= now]
        if not later:
            break
        at = min(later)
    if at < now:
        await objectives.check(uow, agreement, now, inputs)


async def _fresh_schema(engine, schema: str, *, replace: bool) -> None:
    async with engine.begin() as conn:
        tables = (await conn.execute(sa.text("SELECT count(*) FROM information_schema.tables "
                                             "WHERE table_schema = :schema"), {"schema": schema})).scalar()
        if tables and not replace:
            raise SchemaInUse(f"schema {schema!r} already holds {tables} tables; pass --replace to drop it")
        await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))

