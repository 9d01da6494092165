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
Nothing is published: the events the live service published already went out, so the events the
objective checks emit are dropped before the last commit, and the rebuilt outbox stays empty.

The replay uses every core. Records are keyed by aggregate id, so all the facts of an incident are in
one partition: the partitions are shared out among worker processes (forked, one per partition up to
two per core, the biggest first), and each reads its partitions, stores their facts and folds and
stores their clocks with COPY, over its own connection and in its own transaction, into tables whose
indexes and constraints are dropped until all are in. The workers start reading at once: the main process
makes the fresh schema meanwhile, and they wait for it before storing anything (or stop, should it fail).
An incident whose events are on several partitions (its topic was given more partitions, or an event was
produced again under another key) is read in parts by several workers: the main process folds its clocks
again from all its facts.
It then builds the indexes and, in one last transaction, stores the service statuses, records the
clocks' breaches in reviews, checks the objectives and computes compliance.

So the fresh schema is written in several transactions. It is not in use until an operator switches
the service to it, and its comment says whether it is complete: `sla-svc rebuild: incomplete` from
the start, `sla-svc rebuild: complete ...` in the last transaction. A rebuild that failed (an error,
the command exiting non-zero, a worker killed) leaves it incomplete; running it again with
`--replace` starts over.
"""

import asyncio
import gc
import hashlib
import logging
import multiprocessing
import os
import time
from array import array
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka import errors as kafka_errors
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import CorruptRecordException, KafkaConnectionError, LeaderNotAvailableError, OffsetOutOfRangeError
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords

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
VERSION_HEADER = f"ce_{VERSION_EXTENSION}"  # the data's schema version, a CloudEvents extension attribute
BULK_LOADED = ("incident_facts", "clocks")  # by the worker processes, with their indexes and constraints dropped
Partition = tuple[str, int]  # (topic, partition)
Span = tuple[int, int]  # a partition's first offset and its end (the offset after its last record)


class SchemaInUse(RuntimeError):
    pass


@dataclass
class Steps:
    """Seconds spent per step, added up (over the worker processes too)."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        self.seconds.setdefault(name, 0.0)  # listed before the steps timed inside it
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds


@dataclass
class Replayed:
    facts: list[tuple[str, Fact]]
    statuses: list[dict]
    records: int = 0
    poison: int = 0
    # (type, version) headers as read -> the schema (see _model_of)
    models: dict[tuple[bytes, bytes], object] = field(default_factory=dict)


@dataclass
class ShareReplayed:
    """What a worker process hands back: its counts, and what the main process stores after it."""

    records: int
    poison: int
    incidents: array  # the incident_key of each incident whose facts it read
    clocks: int
    breaches: list[BreachRef]
    statuses: list[dict]
    steps: Steps


@dataclass(frozen=True)
class RebuildReport:
    schema: str
    records: int
    poison: int
    incidents: int
    clocks: int
    agreements_with_objectives: int
    seconds: float
    split_incidents: int = 0  # read by more than one worker (their events are on several partitions): folded again
    processes: int = 0
    step_seconds: dict[str, float] = field(default_factory=dict)  # worker steps added up over the processes
    # "topic[partition]" -> its first offset, of the partitions whose first records are gone (retention, deleted):
    # the incidents whose events were there are rebuilt from what is left, unlike the live service's
    gone_before: dict[str, int] = field(default_factory=dict)

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


async def replay_topics(bootstrap_servers: str, names=TOPICS, spans: dict[Partition, Span] | None = None, *,
                        between_batches: Callable[[], None] = lambda: None) -> Replayed:
    """Every incident fact and service status on the topics from the first offset to the end as of now (or on
    the partitions in `spans`, from their first offset up to their end). `between_batches` is called before each
    fetched batch is read (and stops the replay by raising)."""
    replayed = Replayed(facts=[], statuses=[])

    def take(records) -> None:
        between_batches()
        for record in records:
            _take(replayed, record)

    await read_topics(bootstrap_servers, names, take, spans=spans)
    return replayed


class RecordsGone(RuntimeError):
    """Records the replay had still to read were deleted from the topic (by retention) while it ran."""


FETCH_MAX_BYTES, PARTITION_FETCH_MAX_BYTES = 64 * 1024 * 1024, 16 * 1024 * 1024
FETCH_RETRIES = 20  # a leader moving, a connection lost: metadata again, and the fetch again after RETRY_BACKOFF
RETRY_BACKOFF = 0.25


async def read_topics(bootstrap_servers: str, names, take: Callable[[list], None], *,
                      spans: dict[Partition, Span] | None = None) -> None:
    """Hand every record of the topics to `take`, a fetched batch at a time, from the first offset to the end as
    of now (or every record of the partitions in `spans`, from their first offset up to their end).

    Fetched with aiokafka's client and read with its record batches, without its consumer, which makes an object of
    every record on top: 200,000 records took 0.73 to 0.86 CPU-seconds through it, 0.58 to 0.66 this way (measured;
    iterating the fetched batches alone, 0.2).
    The next fetch is sent before a fetched batch is handed over, so the broker prepares it meanwhile."""
    if spans is None:
        spans = await partition_offsets(bootstrap_servers, names)
    position = {partition: first for partition, (first, end) in spans.items() if end > first}
    if not position:
        return
    client = AIOKafkaClient(bootstrap_servers=bootstrap_servers)
    await client.bootstrap()
    try:
        await client.set_topics(sorted({topic for topic, _ in position}))
        fetching: asyncio.Future | None = asyncio.ensure_future(_fetch(client, position))
        try:
            while fetching is not None:
                fetched = await fetching
                batches = []
                for partition, records in fetched:
                    first, end = position[partition], spans[partition][1]
                    while records.has_next():
                        batch = records.next_batch()
                        if not batch.validate_crc():
                            raise CorruptRecordException(f"invalid CRC in {partition}")
                        if not batch.is_control_batch:  # transaction markers
                            batches.append((batch, first, end))
                        position[partition] = batch.next_offset
                    if position[partition] >= end:
                        del position[partition]
                fetching = asyncio.ensure_future(_fetch(client, position)) if position else None
                await asyncio.sleep(0)  # the next fetch goes out (its task runs until it waits for the response)
                for batch, first, end in batches:
                    # a batch may start before the offset fetched from (compressed, or compacted)
                    take([record for record in batch if first <= record.offset < end])
        finally:
            # stopped (an error, a cancellation): the fetch under way ends before the client closes, its error
            # retrieved, rather than retrying on a closed client
            if fetching is not None:
                fetching.cancel()  # nothing, once it is done
                await asyncio.gather(fetching, return_exceptions=True)
    finally:
        await client.close()


async def _fetch(client: AIOKafkaClient, position: dict[Partition, int]) -> list[tuple[Partition, MemoryRecords]]:
    """The records of each partition from its position on, as far as one fetch brings (at least one batch of each
    unless nothing is left before the end), from each partition's leader."""
    for attempt in range(FETCH_RETRIES + 1):
        by_leader: dict[int, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        for (topic, partition), offset in position.items():
            leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
            by_leader[-1 if leader is None else leader][topic].append((partition, offset, PARTITION_FETCH_MAX_BYTES))
        try:
            if -1 in by_leader:
                raise LeaderNotAvailableError(f"no leader known for {sorted(by_leader[-1])}")
            fetched = []
            for leader, topics in by_leader.items():
                response = await client.send(leader, FetchRequest(
                    max_wait_time=500, min_bytes=1, max_bytes=FETCH_MAX_BYTES, isolation_level=0,
                    topics=list(topics.items())))
                for topic, partitions in response.topics:
                    for partition, error_code, _highwater, *data in partitions:
                        error = kafka_errors.for_code(error_code)
                        if error is OffsetOutOfRangeError:
                            raise RecordsGone(f"the records of {topic}[{partition}] from offset "
                                              f"{position[topic, partition]} on were deleted while they were replayed")
                        if error is not kafka_errors.NoError:
                            raise error(f"fetching {topic}[{partition}]")
                        fetched.append(((topic, partition), MemoryRecords(data[-1])))
            return fetched
        except kafka_errors.KafkaError as exc:
            if not exc.retriable and not isinstance(exc, KafkaConnectionError) or attempt == FETCH_RETRIES:
                raise
            log.warning("fetching again after %s", exc)
            await asyncio.sleep(RETRY_BACKOFF)
            await client.force_metadata_update()
    raise AssertionError("unreachable")


async def partition_offsets(bootstrap_servers: str, names=TOPICS) -> dict[Partition, Span]:
    """(first offset, end offset) of each partition of the topics (those that exist) as of now."""
    partitions = await _partitions_of(bootstrap_servers, names)
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        assigned = _assigned_paused(consumer, partitions)
        first, end = await consumer.beginning_offsets(assigned), await consumer.end_offsets(assigned)
        return {(tp.topic, tp.partition): (first[tp], end[tp]) for tp in assigned}
    finally:
        await consumer.stop()


async def _partitions_of(bootstrap_servers: str, names) -> list[Partition]:
    """Every partition of those of the topics that exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        described = await admin.describe_topics([name for name in names if name in existing])
        return sorted((topic["topic"], p["partition"]) for topic in described for p in topic["partitions"])
    finally:
        await admin.close()


def _assigned_paused(consumer: AIOKafkaConsumer, partitions: list[Partition]) -> list[TopicPartition]:
    """Assign the partitions to the consumer (without a group: nobody else is assigned them), fetching nothing yet.

    Kafka answers the requests on a connection in order: offset requests sent while a fetch is under way wait
    for its response (tens of megabytes, or half a second when there is nothing to fetch), measured."""
    assigned = [TopicPartition(topic, partition) for topic, partition in partitions]
    consumer.assign(assigned)
    consumer.pause(*assigned)
    return assigned


def _take(replayed: Replayed, record) -> None:
    """Keep a record sla-svc consumes, read straight from its CloudEvent headers and JSON value.

    The CloudEvents SDK and the registry's model take 24 µs a record, this 4.5 µs (measured), and the
    live consumer has already dead-lettered the records that are not valid events: a replay reads
    only what it needs, the type, id and version headers and the data, validated by its schema (looked up once
    per pair of type and version headers met)."""
    replayed.records += 1
    headers = dict(record.headers)
    kind = (headers.get("ce_type", b""), headers.get(VERSION_HEADER, b"1"))
    model = replayed.models.get(kind, _UNSEEN)
    if model is _UNSEEN:
        model = replayed.models[kind] = _model_of(*kind)
    if model is None:  # a type sla-svc does not consume
        return
    try:
        if model is _NO_SCHEMA:
            raise LookupError(f"no schema for {kind}")
        event_id, data = headers["ce_id"].decode(), model.model_validate_json(record.value)
    except (LookupError, ValueError):  # a missing id (KeyError); pydantic's ValidationError is a ValueError
        replayed.poison += 1
        return
    if isinstance(data, schemas.ServiceAvailabilityChanged):
        replayed.statuses.append(status_row(event_id, data))
    else:
        replayed.facts.append(fact_of(event_id, data))


_UNSEEN, _NO_SCHEMA = object(), object()


def _model_of(event_type: bytes, version: bytes):
    """The schema of a record with these headers: None if sla-svc does not consume its type, _NO_SCHEMA if its
    version has none or is not a number (the record is poison)."""
    name = event_type.decode(errors="replace")
    if name not in CONSUMED:
        return None
    try:
        return registry.model_for(name, int(version))
    except (ValueError, registry.UnknownEventType):
        return _NO_SCHEMA


def records_gone(offsets: dict[Partition, Span]) -> dict[str, int]:
    """The partitions whose first offset is not 0, as "topic[partition]" -> that offset: records before it were
    deleted (retention, or deleted by hand), so a replay cannot fold them. (The domain topics are created to keep
    every record: itsm_events.bus.EVENT_LOG_CONFIG.)"""
    return {f"{topic}[{partition}]": first for (topic, partition), (first, _) in sorted(offsets.items()) if first > 0}


def shares(sizes: dict[Partition, int], processes: int) -> list[list[Partition]]:
    """The non-empty partitions in at most `processes` shares of about the same number of records: each
    partition, the biggest first, goes to the share with the fewest so far."""
    loads: list[tuple[int, list[Partition]]] = [(0, []) for _ in range(processes)]
    for partition, size in sorted(sizes.items(), key=lambda item: (-item[1], item[0])):
        if size > 0:
            index = min(range(processes), key=lambda i: loads[i][0])
            loads[index] = (loads[index][0] + size, [*loads[index][1], partition])
    return [share for _, share in loads if share]


def default_processes() -> int:
    """Two per core: partitions seldom divide evenly among the cores (3 among 2), and a process waits on
    Kafka and PostgreSQL now and then."""
    return 2 * usable_cores()


def usable_cores() -> int:
    """The cores this process may run on (a container or `taskset` may allow fewer than the machine has)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


async def rebuild(settings: Settings, *, schema: str, replace: bool = False,
                  processes: int | None = None) -> RebuildReport:
    """Rebuild sla-svc's state from `settings.db_schema` (entered data) and the topics into `schema`.

    The partitions are replayed by up to `processes` forked processes (default: two per core); 0 replays them
    one after the other in this process (to profile it)."""
    if schema == settings.db_schema:
        raise SchemaInUse("rebuild into a new schema, not the one the service runs on")
    started, steps = time.perf_counter(), Steps()
    processes = default_processes() if processes is None else processes
    engine = create_engine(settings.database_url, schema=schema)
    try:
        with steps.timed("schema checked (dropped, if replaced)"):
            await _fresh_schema(engine, schema, replace=replace)
        with steps.timed("partitions listed"):
            offsets = await partition_offsets(settings.kafka_bootstrap_servers)
        gone = records_gone(offsets)
        if gone:
            log.warning("records no longer on the topics (retention, or deleted) are not replayed: those before "
                        "%s", ", ".join(f"offset {first} of {partition}" for partition, first in gone.items()))
        now = datetime.now(UTC)  # every record replayed was on the topics before
        parts = [{partition: offsets[partition] for partition in share}
                 for share in shares({p: end - first for p, (first, end) in offsets.items()}, max(processes, 1))]

        async def prepare() -> Indexes:
            with steps.timed("  of which schema created, entered data copied"):
                await migrate(engine, migrations_dir=MIGRATIONS, schema=schema)
                async with engine.begin() as conn:
                    await _describe(conn, schema, "incomplete (being rebuilt, or the rebuild failed: run it "
                                                  "again with --replace)")
                    for table in COPIED:
                        await conn.execute(sa.text(
                            f'INSERT INTO "{schema}".{table} OVERRIDING SYSTEM VALUE '
                            f'SELECT * FROM "{settings.db_schema}".{table}'))
                    return await _drop_indexes(conn, schema, BULK_LOADED)

        with steps.timed("partitions replayed (wall time)"):
            recreate, replayed = await _replay_shares(settings, schema, parts, now, prepare,
                                                      in_process=processes == 0)
        for share in replayed:
            for name, seconds in share.steps.seconds.items():
                steps.add(f"workers: {name}", seconds)
        split = split_incidents(replayed)
        breaches = [b for share in replayed for b in share.breaches if incident_key(b.incident_id) not in split]
        clock_count = sum(share.clocks for share in replayed)
        if split:
            with steps.timed("incidents read by several workers folded again"):
                more_clocks, more_breaches = await _fold_again(engine, split, now)
            clock_count, breaches = clock_count + more_clocks, breaches + more_breaches
        async with UnitOfWork(engine, platform["outbox"], source="/sla-svc") as uow:
            with steps.timed("indexes built and tables analyzed, and meanwhile statuses stored and breaches recorded"):
                await asyncio.gather(_store_statuses_and_breaches(uow, replayed, breaches),
                                     _add_indexes(engine, recreate, usable_cores(), steps))
            calendars = CalendarStore(fixed=True)
            agreements = await repository.all_agreements(uow.conn)
            with_objectives = [a for a in agreements if a.objectives]
            with steps.timed("objectives checked"):
                for agreement in with_objectives:
                    await _check_objectives(uow, calendars, agreement, now)
            with steps.timed("compliance computed"):
                live = Compliance(None, calendars)
                for agreement in agreements:
                    await live.store(uow, agreement)
            with steps.timed("committed"):
                uow.forget_events()  # the live service published them already
                records = sum(share.records for share in replayed)
                await _describe(uow.conn, schema, f"complete: {records} records replayed at {now.isoformat()}")
                await uow.commit()
    finally:
        await engine.dispose()
    return RebuildReport(schema=schema, records=records, poison=sum(share.poison for share in replayed),
                         incidents=len(set().union(*(share.incidents for share in replayed))),  # once each
                         clocks=clock_count,
                         agreements_with_objectives=len(with_objectives), seconds=time.perf_counter() - started,
                         split_incidents=len(split),
                         processes=0 if processes == 0 else len(parts),
                         step_seconds={name: round(seconds, 3) for name, seconds in steps.seconds.items()},
                         gone_before=gone)


STATUS_COLUMNS = ("event_id", "service_id", "status", "observed_at")


async def _store_statuses_and_breaches(uow: UnitOfWork, replayed: list["ShareReplayed"],
                                       breaches: list[BreachRef]) -> None:
    statuses = [row for share in replayed for row in share.statuses]
    await repository.copy_records(uow.conn, service_status, STATUS_COLUMNS, list(
        {r["event_id"]: tuple(r[c] for c in STATUS_COLUMNS) for r in reversed(statuses)}.values()))
    await record_breaches(uow, breaches)


def incident_key(incident_id: str) -> int:
    """A 64-bit digest of an incident id, the same in every process: what a worker hands back of each incident it
    read (8 bytes, where the id and its pickling take 90)."""
    return int.from_bytes(hashlib.blake2b(incident_id.encode(), digest_size=8).digest(), "big", signed=True)


def split_incidents(replayed: list["ShareReplayed"]) -> set[int]:
    """The keys of the incidents whose facts more than one share read: their events are on several partitions
    (the topic was given more partitions, or an event was produced again under another key), so no worker folded
    their clocks from all of them."""
    seen: set[int] = set()
    split: set[int] = set()
    for share in replayed:
        keys = set(share.incidents)
        split |= seen & keys
        seen |= keys
    return split


async def _fold_again(engine, split: set[int], now: datetime) -> tuple[int, list[BreachRef]]:
    """Fold the clocks of the split incidents again from all their facts, in place of those the workers folded
    from their part (an event read from two partitions keeps one fact); the clocks added, and their breaches.
    (Another incident whose key is the same is folded again too, to the same clocks.)"""
    async with engine.begin() as conn:
        ids = sorted(incident_id for incident_id in (await conn.execute(sa.text(
            "SELECT DISTINCT incident_id FROM incident_facts"))).scalars() if incident_key(incident_id) in split)
        await conn.execute(sa.text(
            "DELETE FROM incident_facts a USING incident_facts b WHERE a.incident_id = ANY(:ids) "
            "AND b.incident_id = ANY(:ids) AND b.event_id = a.event_id AND a.ctid > b.ctid"), {"ids": ids})
        dropped = (await conn.execute(sa.text("DELETE FROM clocks WHERE incident_id = ANY(:ids)"),
                                      {"ids": ids})).rowcount
        _, folded, breaches = await _fold_clocks(conn, CalendarStore(fixed=True),
                                                 await repository.facts_of_incidents(conn, ids),
                                                 await repository.all_agreements(conn), now, Steps())
    return folded - dropped, breaches


async def _replay_shares(settings: Settings, schema: str, parts: list[dict[Partition, Span]], now: datetime,
                         prepare: Callable[[], Awaitable["Indexes"]], *,
                         in_process: bool) -> tuple["Indexes", list[ShareReplayed]]:
    """Replay the shares, while `prepare()` makes the schema they are stored into: the workers read and decode
    their partitions meanwhile (the migrations' time saved: 0.25 s in an A/B), and wait for it to store them.
    (`prepare`'s result, what each share replayed.)"""
    args = (settings.database_url, settings.kafka_bootstrap_servers, schema, now)
    if in_process or not parts:
        prepared = await prepare()
        return prepared, [await _replay_share(*args, share) for share in parts]
    # forked, not spawned: a fresh interpreter takes seconds to import the service; the child only uses what
    # it creates itself (its own event loop, Kafka consumer and database connection), and the events it waits on
    context = multiprocessing.get_context("fork")
    ready, failed = context.Event(), context.Event()
    with ProcessPoolExecutor(len(parts), mp_context=context, initializer=_wait_for_the_schema_with,
                             initargs=(ready, failed)) as pool:
        loop = asyncio.get_running_loop()
        replaying = [loop.run_in_executor(pool, _replay_share_in_process, *args, share) for share in parts]
        try:
            prepared = await prepare()
        except BaseException:
            failed.set()
            ready.set()
            await asyncio.gather(*replaying, return_exceptions=True)  # stopped: their errors are this one's
            raise
        ready.set()
        return prepared, list(await asyncio.gather(*replaying))


_schema_events: tuple | None = None  # in a worker process: (ready, failed), the main process's events


def _wait_for_the_schema_with(ready, failed) -> None:
    global _schema_events
    _schema_events = (ready, failed)


class SchemaNotMade(RuntimeError):
    pass


def _schema_not_failed() -> None:
    """In a worker process, stop (raise) once the main process has failed to make the schema."""
    if _schema_events is not None and _schema_events[1].is_set():
        raise SchemaNotMade("the main process failed to make the schema")


def _schema_made() -> None:
    """In a worker process, wait until the main process has made the schema (at once in the main process); stop
    should it have failed, or have gone (killed: no one is left to tell)."""
    if _schema_events is None:
        return
    ready, _ = _schema_events
    while not ready.wait(1.0):
        parent = multiprocessing.parent_process()
        if parent is not None and not parent.is_alive():
            raise SchemaNotMade("the main process is gone")
    _schema_not_failed()


def _replay_share_in_process(database_url: str, bootstrap_servers: str, schema: str, now: datetime,
                             share: dict[Partition, Span]) -> ShareReplayed:
    # The process ends once its share is stored: the garbage collector, which would traverse every record
    # and fact many times over (a third of the time), has nothing to reclaim that the exit does not.
    gc.disable()
    return asyncio.run(_replay_share(database_url, bootstrap_servers, schema, now, share))


async def _replay_share(database_url: str, bootstrap_servers: str, schema: str, now: datetime,
                        share: dict[Partition, Span]) -> ShareReplayed:
    """Read the partitions up to their end offsets, store their facts, fold and store their incidents' clocks: one
    transaction."""
    steps, cpu_started = Steps(), time.process_time()
    with steps.timed("read and decoded"):
        replayed = await replay_topics(bootstrap_servers, spans=share, between_batches=_schema_not_failed)
    with steps.timed("waited for the schema"):
        _schema_made()
    engine = create_engine(database_url, schema=schema, pool_size=1)
    try:
        async with engine.begin() as conn:
            with steps.timed("facts stored"):
                await repository.copy_records(conn, incident_facts, repository.FACT_COLUMNS,
                                              repository.fact_records(replayed.facts))
            agreements = await repository.all_agreements(conn)
            incidents, folded, breaches = await _fold_clocks(conn, CalendarStore(fixed=True), replayed.facts,
                                                             agreements, now, steps)
    finally:
        await engine.dispose()
    steps.add("CPU used (all steps, process time)", time.process_time() - cpu_started)
    return ShareReplayed(records=replayed.records, poison=replayed.poison,
                         incidents=array("q", map(incident_key, incidents)), clocks=folded,
                         breaches=breaches, statuses=replayed.statuses, steps=steps)


async def _fold_clocks(conn, calendars: CalendarStore, facts: list[tuple[str, Fact]], agreements, now: datetime,
                       steps: Steps) -> tuple[set[str], int, list[BreachRef]]:
    """Fold and store the clocks of the incidents of `facts`: (those incidents, how many clocks, their breaches)."""
    by_incident: dict[str, list[Fact]] = defaultdict(list)
    for incident_id, fact in facts:
        by_incident[incident_id].append(fact)
    by_service = defaultdict(list)
    for agreement in agreements:
        by_service[agreement.service_id].append(agreement)
    folder, batch, breaches, count = Clocks(None, calendars), [], [], 0
    fold_started = time.perf_counter()
    for incident_id, mine in by_incident.items():
        opened = opening_of(mine)
        if opened is None:
            continue
        for clock in await folder.fold(conn, incident_id, mine, by_service[opened.service_id], [], now):
            clock.published = {e.key for e in clock.state.timeline if e.at <= now}
            if clock.objective_id is None and clock.breached_at is not None and clock.breached_at <= now:
                breaches.append(BreachRef(agreement_id=clock.agreement_id, service_id=clock.service_id,
                                          kind="clock", ref_id=clock.id, incident_id=incident_id,
                                          breached_at=clock.breached_at))
            batch.append(clock)
        if len(batch) >= CHUNK:
            steps.add("fold", time.perf_counter() - fold_started)
            await _store_clocks(conn, batch, steps)
            count, batch, fold_started = count + len(batch), [], time.perf_counter()
    steps.add("fold", time.perf_counter() - fold_started)
    await _store_clocks(conn, batch, steps)
    return set(by_incident), count + len(batch), breaches


async def _store_clocks(conn, batch: list, steps: Steps) -> None:
    with steps.timed("clock records built"):
        records = repository.clock_records(batch)
    with steps.timed("clocks stored (COPY)"):
        await repository.copy_records(conn, clocks, repository.CLOCK_COLUMNS, records)


@dataclass(frozen=True)
class Indexes:
    """How to add a table's dropped indexes and constraints again: the indexes can be built at the same time,
    over several connections; then the constraints take them over (primary key, unique) or are checked, the
    tables' fill factors are set back, and the tables are analyzed."""

    builds: list[str]
    constraints: list[str]
    tables: list[str]  # "schema"."table"
    fill_factors: list[str] = field(default_factory=list)


async def _drop_indexes(conn, schema: str, tables: tuple[str, ...]) -> Indexes:
    """Drop the indexes and constraints (primary key, unique, foreign keys) of the tables, and fill their pages
    whole; return how to add them and set the fill factors back.

    Loading rows into a table without them and building each index once afterwards, by sorting, takes half the
    time PostgreSQL takes to insert every row into every index (measured); a duplicate key still fails, then.
    A table whose pages keep room for updates (the clocks, for timers' HOT updates) is loaded with none: a
    rebuilt clock is mostly completed and never updated again, and full pages took 0.2 CPU-seconds less for the
    clocks of 200,000 events, to write, index and analyze (measured). A running clock's first update then moves
    its row to a page with room, so is not HOT (its index entries are written too); its later ones are."""
    constraints = (await conn.execute(sa.text(
        "SELECT t.relname, c.conname, c.contype::text, pg_get_constraintdef(c.oid), pg_get_indexdef(c.conindid) "
        "FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE n.nspname = :schema AND t.relname = ANY(:tables) AND c.contype IN ('p', 'u', 'f') "
        "ORDER BY c.contype DESC, c.conname"), {"schema": schema, "tables": list(tables)})).all()  # keys first
    indexes = (await conn.execute(sa.text(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = :schema "
        "AND tablename = ANY(:tables) AND indexname <> ALL(:constraints) ORDER BY indexname"),
        {"schema": schema, "tables": list(tables), "constraints": [c.conname for c in constraints]})).all()
    for table, name, *_ in reversed(constraints):  # foreign keys first
        await conn.execute(sa.text(f'ALTER TABLE "{schema}"."{table}" DROP CONSTRAINT "{name}"'))
    for name, _ in indexes:
        await conn.execute(sa.text(f'DROP INDEX "{schema}"."{name}"'))
    fill_factors = (await conn.execute(sa.text(
        "SELECT c.relname, o.option_value FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "CROSS JOIN pg_options_to_table(c.reloptions) o WHERE n.nspname = :schema AND c.relname = ANY(:tables) "
        "AND o.option_name = 'fillfactor' ORDER BY c.relname"), {"schema": schema, "tables": list(tables)})).all()
    for table, _ in fill_factors:
        await conn.execute(sa.text(f'ALTER TABLE "{schema}"."{table}" SET (fillfactor = 100)'))
    kinds = {"p": "PRIMARY KEY", "u": "UNIQUE"}
    return Indexes(
        builds=[index for *_, kind, _, index in constraints if kind in kinds] + [index for _, index in indexes],
        constraints=[f'ALTER TABLE "{schema}"."{table}" ADD CONSTRAINT "{name}" '
                     + (f'{kinds[kind]} USING INDEX "{name}"' if kind in kinds else definition)
                     for table, name, kind, definition, _ in constraints],
        tables=[f'"{schema}"."{table}"' for table in tables],
        fill_factors=[f'ALTER TABLE "{schema}"."{table}" SET (fillfactor = {value})' for table, value in fill_factors])


async def _add_indexes(engine, indexes: Indexes, cores: int, steps: Steps) -> None:
    """Build the indexes over up to one connection per core (each takes the next one left), then add the
    constraints, set the fill factors back and analyze the tables.

    Each build has its share of the cores, `cores // builds` processes: parallel workers only with at least
    twice as many cores as indexes. (Each of 7 builds with 2 parallel workers, two at a time on 2 cores, used
    15% more CPU than without, measured.)"""
    left = list(reversed(indexes.builds))
    workers = max(0, cores // max(len(left), 1) - 1)  # besides the connection's own process

    async def build() -> None:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"SET LOCAL max_parallel_maintenance_workers = {workers}"))
            while left:
                await conn.execute(sa.text(left.pop()))

    with steps.timed("  of which indexes built"):
        await asyncio.gather(*(build() for _ in range(min(cores, len(left)))))
    with steps.timed("  of which constraints added, fill factors set back"):
        async with engine.begin() as conn:
            for statement in [*indexes.constraints, *indexes.fill_factors]:
                await conn.execute(sa.text(statement))
    # Statistics, so that the queries from here on (compliance counts) and the service's once it switches to the
    # schema are planned for the tables' real contents: without them, an agreement's 100,000 clocks were read
    # through an index in random order (0.6 s) instead of by a scan.
    with steps.timed("  of which tables analyzed"):
        await asyncio.gather(*(_analyze(engine, table) for table in indexes.tables))


STATISTICS_TARGET = 10  # rows sampled: 300 times this


async def _analyze(engine, table: str) -> None:
    """Statistics of the columns queries select rows by, from a sample of 3,000 rows.

    Enough to plan a scan or an index (how many rows a value has, the most common values), and cheap: of every
    column, the clocks' JSON states included, ANALYZE took 0.5 s for 100,000 clocks; of the columns without
    JSON at the default sample of 30,000 rows, 0.6 CPU-seconds for the clocks and facts of 200,000 events, at
    3,000 rows 0.1 (measured). So not the JSON columns, which no query selects rows by: json, jsonb, or text with
    a statistics target of 0 (the clocks' states). The values too rare to be among the 10 most common are
    estimated from the number of distinct ones: an agreement of 1% of the clocks at about 1% of them. Autovacuum
    analyzes the tables again at the server's default once a tenth of their rows have changed."""
    async with engine.begin() as conn:
        columns = (await conn.execute(sa.text(
            "SELECT a.attname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
            "WHERE a.attrelid = CAST(:table AS regclass) AND a.attnum > 0 AND NOT a.attisdropped "
            "AND t.typname NOT IN ('json', 'jsonb', 'bytea') AND a.attstattarget IS DISTINCT FROM 0"),
            {"table": table})).scalars().all()
        names = ", ".join(f'"{column}"' for column in columns)
        await conn.execute(sa.text(f"SET LOCAL default_statistics_target = {STATISTICS_TARGET}"))
        await conn.execute(sa.text(f"ANALYZE {table} ({names})"))


async def _check_objectives(uow: UnitOfWork, calendars: CalendarStore, agreement, now: datetime) -> None:
    """Check the agreement's objectives at each instant the live service would have: status changes and timers."""
    objectives = Objectives(None, calendars)
    inputs = await service_inputs(uow.conn, agreement.service_id)
    # from when it was created, as the live service checks it then (routes ask for a check on creation)
    start = agreement.extra["created_at"]
    changes = inputs[0].changes_between(start, now + timedelta(microseconds=1))
    at, since = min(start, now), agreement.effective_from  # on creation, every window closed since it took effect
    while True:
        due = await objectives.check(uow, agreement, at, inputs, since=since)
        since = None
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


async def _describe(conn, schema: str, state: str) -> None:
    """Say on the schema whether it is complete: an operator switches the service only to a complete one."""
    await conn.execute(sa.text(f"COMMENT ON SCHEMA \"{schema}\" IS " + _literal(f"sla-svc rebuild: {state}")))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
