"""Transports (Kafka, in-process), the outbox relay and the consumer dispatcher.

Both transports give the same guarantees to the code above them: a record leaves the
outbox only after the transport has it; a consumer's effects and its inbox row commit
before the record is acknowledged; records with the same key are handled in order.
"""

import asyncio
import contextlib
import logging
import random
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import MessageSizeTooLargeError, TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from opentelemetry import trace
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import metrics
from .envelope import Envelope, PoisonMessage, from_kafka, parse_data
from .outbox import UnitOfWork, Wakeup, claim_inbox, claim_inbox_many, headers_from_row
from .sql import execute_columns, unnest
from .topics import ALL, dead_letter_topic
from .tracing import context_from_headers, kafka_instrumented, producing_in

log = logging.getLogger("itsm.bus")
_PARTITIONER = DefaultPartitioner()  # what AIOKafkaProducer.send uses: murmur2 of the key, as the Java client
MAX_RECORD_BYTES = 1024 * 1024  # the producer's largest request, within a broker's default message.max.bytes
# What a record may gain on its way, left free by `fits`: the trace context the aiokafka instrumentation puts in
# (a row written outside any span has none stored), and the headers of a consumer's dead letter (error 2,000 bytes)
HEADROOM_BYTES = 4096
tracer = trace.get_tracer("itsm.bus")
# The domain topics are the event log that the services' state is a fold over (`sla-svc rebuild` replays them from
# their first offset): created to keep every record, not the broker's default week. Dead-letter topics keep the
# broker's default.
EVENT_LOG_CONFIG = {"retention.ms": "-1"}


@dataclass(frozen=True)
class Message:
    """One record as a transport carries it."""

    topic: str
    key: bytes | None
    headers: dict[str, bytes]
    value: bytes
    partition: int = 0
    offset: int = 0


DispatchFn = Callable[[list[Message]], Awaitable[None]]


class Transport(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def send_many(self, messages: list[Message]) -> None: ...
    async def hand_over(self, messages: list[Message]) -> Awaitable: ...
    def fits(self, message: Message) -> bool: ...
    def subscribe(self, topics: Iterable[str], group: str, dispatch: DispatchFn) -> None: ...
    async def healthy(self) -> bool: ...
    async def caught_up(self, timeout: float) -> bool: ...
    def relay_started(self, service: str) -> None: ...
    def relay_drained(self, service: str) -> None: ...


# Kafka ---------------------------------------------------------------------------------


@dataclass
class KafkaTransport:
    """aiokafka producer (acks=all, idempotent) and one consumer per subscribed group."""

    bootstrap_servers: str
    client_id: str
    partitions: int = 3
    _producer: AIOKafkaProducer | None = None
    _subscriptions: list[tuple[tuple[str, ...], str, DispatchFn]] = field(default_factory=list)
    _consumers: list[AIOKafkaConsumer] = field(default_factory=list)
    _tasks: list[asyncio.Task] = field(default_factory=list)
    _stopping: bool = False

    def subscribe(self, topics: Iterable[str], group: str, dispatch: DispatchFn) -> None:
        self._subscriptions.append((tuple(topics), group, dispatch))

    async def ensure_topics(self, topics: Iterable[str], *, kept_whole: Iterable[str] = ALL) -> None:
        """Create the topics that do not exist yet; those in `kept_whole` (the domain topics) keep every record."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers, client_id=f"{self.client_id}-admin")
        await admin.start()
        try:
            existing, whole = set(await admin.list_topics()), set(kept_whole)
            missing = [t for t in dict.fromkeys(topics) if t not in existing]
            if missing:
                new = [NewTopic(name=t, num_partitions=self.partitions, replication_factor=1,
                                topic_configs=EVENT_LOG_CONFIG if t in whole else {}) for t in missing]
                try:
                    await admin.create_topics(new)
                except TopicAlreadyExistsError:
                    pass
        finally:
            await admin.close()

    async def start(self) -> None:
        wanted = list(ALL)
        for topics, group, _ in self._subscriptions:
            wanted += [dead_letter_topic(t, group) for t in topics]
        await self.ensure_topics(wanted)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            # a relay batch (500 events of about a kilobyte) goes in a request or two, not one per 16 KiB
            max_batch_size=512 * 1024,
            max_request_size=MAX_RECORD_BYTES,
        )
        await self._producer.start()
        for topics, group, dispatch in self._subscriptions:
            consumer = AIOKafkaConsumer(
                *topics,
                bootstrap_servers=self.bootstrap_servers,
                client_id=self.client_id,
                group_id=group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=50,
                session_timeout_ms=6000,
                heartbeat_interval_ms=1500,
                max_poll_interval_ms=300000,
            )
            await consumer.start()
            self._consumers.append(consumer)
            self._tasks.append(asyncio.create_task(self._consume(consumer, group, dispatch)))

    async def _consume(self, consumer: AIOKafkaConsumer, group: str, dispatch: DispatchFn) -> None:
        while not self._stopping:
            try:
                batches = await consumer.getmany(timeout_ms=500, max_records=500)
                if batches:
                    # Every partition's batch must finish before the next fetch, or a partition's next batch
                    # could run beside its previous one and break per-key order.
                    results = await asyncio.gather(*(self._drain(consumer, group, tp, records, dispatch)
                                                     for tp, records in batches.items()), return_exceptions=True)
                    for (tp, records), result in zip(batches.items(), results, strict=True):
                        if isinstance(result, asyncio.CancelledError):
                            raise result
                        if isinstance(result, BaseException):
                            # not committed: fetch the batch again rather than skip past it
                            log.error("consumer of %s failed on %s; fetching it again: %r", group, tp, result)
                            consumer.seek(tp, records[0].offset)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("consumer loop of %s failed; retrying", group)
                await asyncio.sleep(1)

    async def _drain(self, consumer, group, tp: TopicPartition, records, dispatch: DispatchFn) -> None:
        await dispatch([
            Message(topic=record.topic, key=record.key, value=record.value if record.value is not None else b"",
                    headers={k: v if v is not None else b"" for k, v in record.headers or ()},
                    partition=record.partition, offset=record.offset)
            for record in records
        ])
        await consumer.commit({tp: records[-1].offset + 1})  # after the database commit of every record
        highwater = consumer.highwater(tp)
        if highwater is not None:
            metrics.CONSUMER_LAG.labels(group, tp.topic, str(tp.partition)).set(
                max(0, highwater - records[-1].offset - 1))

    async def send_many(self, messages: list[Message]) -> None:
        """Send in order and wait for every acknowledgement."""
        await (await self.hand_over(messages))

    def fits(self, message: Message) -> bool:
        """Whether the record is small enough for the producer (and a broker's default `message.max.bytes`), with
        `HEADROOM_BYTES` to spare for the headers it may gain: then it can be sent traced, and dead-lettered.

        One too large fails its batch, and leaves the idempotent producer's sequence for that partition broken:
        every later batch to it fails too (OutOfOrderSequenceNumber), measured."""
        if len(message.value) + len(message.key or b"") < MAX_RECORD_BYTES // 2:  # the usual case, at a glance
            return True
        return DefaultRecordBatchBuilder.estimate_size_in_bytes(
            message.key, message.value, list(message.headers.items())) + HEADROOM_BYTES <= MAX_RECORD_BYTES

    async def hand_over(self, messages: list[Message]) -> Awaitable:
        """Queue the records in order (what is handed over later goes after them); the awaitable completes once
        the broker has acknowledged them all. Traced (a send span per record, from the aiokafka
        instrumentation), record by record; otherwise in one record batch per partition, which costs a fifth."""
        assert self._producer is not None, "transport not started"
        futures = []
        if kafka_instrumented():
            for m in messages:
                with producing_in(m.headers) as headers:
                    futures.append(await self._producer.send(m.topic, value=m.value, key=m.key, headers=headers))
        else:
            futures = await self._send_batches(messages)
        return asyncio.gather(*futures)

    async def _send_batches(self, messages: list[Message]) -> list[asyncio.Future]:
        """Records of one partition go in batches, in order, to the partition `send` would pick for their key."""
        producer, futures = self._producer, []
        partitions = {topic: sorted(await producer.partitions_for(topic)) for topic in {m.topic for m in messages}}
        batches: dict[tuple[str, int], BatchBuilder] = {}
        for m in messages:
            target = (m.topic, _PARTITIONER(m.key, partitions[m.topic], partitions[m.topic]))
            record = {"key": m.key, "value": m.value, "timestamp": None, "headers": list(m.headers.items())}
            batch = batches.get(target)
            if batch is not None and batch.append(**record) is not None:
                continue
            if batch is not None:  # full: send it, and start the next one
                futures.append(await producer.send_batch(batch, target[0], partition=target[1]))
            batch = batches[target] = producer.create_batch()
            if batch.append(**record) is None:
                raise MessageSizeTooLargeError(f"a record of {len(m.value)} bytes does not fit in a batch")
        for (topic, partition), batch in batches.items():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        return futures

    async def caught_up(self, timeout: float) -> bool:
        """Wait until every consumer has processed what its partitions held when this was called."""
        try:
            async with asyncio.timeout(timeout):  # the client's own calls retry without a bound
                return await self._caught_up(timeout)
        except TimeoutError:
            return False

    async def _caught_up(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for consumer in self._consumers:
            while not consumer.assignment() and loop.time() < deadline:
                await asyncio.sleep(0.1)
            partitions = list(consumer.assignment())
            if not partitions:
                return False
            ends = await consumer.end_offsets(partitions)
            beginnings = await consumer.beginning_offsets(partitions)
            for tp in partitions:
                while loop.time() < deadline:
                    committed = await consumer.committed(tp)
                    if ends[tp] <= beginnings[tp] or (committed is not None and committed >= ends[tp]):
                        break  # nothing left to read (never written, or all expired), or all of it processed
                    await asyncio.sleep(0.1)
                else:
                    return False
        return True

    def relay_started(self, service: str) -> None:
        """Kafka holds what the relays publish: nothing to track here."""

    def relay_drained(self, service: str) -> None:
        """Kafka holds what the relays publish: nothing to track here."""

    async def healthy(self) -> bool:
        if self._producer is None:
            return False
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 2)
            return True
        except Exception:
            return False

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        for client in [*self._consumers, self._producer]:
            if client is None:
                continue
            try:
                await asyncio.wait_for(client.stop(), 10)
            except TimeoutError:
                log.warning("%s: a Kafka client did not stop within 10 s", self.client_id)


# In-process ----------------------------------------------------------------------------


@dataclass
class InProcessTransport:
    """Standalone mode: a record is handed to every subscribed group before send returns.

    The outbox row is marked published only after every group has committed its effects,
    so a crash re-delivers from the outbox and the inboxes drop the duplicates.
    """

    _groups: dict[str, list[tuple[str, DispatchFn]]] = field(default_factory=lambda: defaultdict(list))
    dead_letters: list[Message] = field(default_factory=list)
    _open: asyncio.Event = field(default_factory=asyncio.Event)
    _relays: set[str] = field(default_factory=set)
    _drained_since_open: set[str] = field(default_factory=set)

    def subscribe(self, topics: Iterable[str], group: str, dispatch: DispatchFn) -> None:
        for topic in topics:
            self._groups[topic].append((group, dispatch))

    async def start(self) -> None:
        """Open delivery once every service has subscribed, so no group misses early records."""
        self._open.set()

    async def stop(self) -> None:
        self._open.clear()

    async def hand_over(self, messages: list[Message]) -> Awaitable:
        """Delivered to every group before it returns: nothing left to wait for."""
        await self.send_many(messages)
        return asyncio.sleep(0)

    def fits(self, message: Message) -> bool:
        return True

    async def send_many(self, messages: list[Message]) -> None:
        await self._open.wait()
        for message in messages:
            if message.topic.endswith(".dlq"):
                self.dead_letters.append(message)
                log.error("dead letter on %s: %s", message.topic, message.headers.get("error", b"").decode())
        by_group: dict[DispatchFn, list[Message]] = defaultdict(list)
        for message in messages:
            for _group, dispatch in self._groups.get(message.topic, ()):
                by_group[dispatch].append(message)
        for dispatch, batch in by_group.items():
            await dispatch(batch)

    async def healthy(self) -> bool:
        return True

    def relay_started(self, service: str) -> None:
        self._relays.add(service)

    def relay_drained(self, service: str) -> None:
        """A relay found its outbox empty; counts once delivery is open (its backlog went out)."""
        if self._open.is_set():
            self._drained_since_open.add(service)

    async def caught_up(self, timeout: float) -> bool:
        """Caught up once every relay has emptied its outbox since delivery opened: the backlog a
        restart found in the outboxes has been handed to every group by then."""
        try:
            async with asyncio.timeout(timeout):
                await self._open.wait()
                while not self._relays <= self._drained_since_open:
                    await asyncio.sleep(0.05)
                return True
        except TimeoutError:
            return False


# Relay ---------------------------------------------------------------------------------


# The lock of the outbox table in the connection's schema (the service's own: tests run several of a service),
# held by the transaction of one turn of publishing.
_RETRY_DUE = timedelta(milliseconds=50)  # a relay looks again this soon at a due row it could not publish
_TAKE_RELAY_LOCK = sa.text("SELECT pg_try_advisory_xact_lock(hashtext('outbox:' || current_schema()))")


@dataclass
class OutboxRelay:
    """Publishes outbox rows in commit order; woken on commit, sweeps for orphans anyway.

    One relay per outbox publishes at a time (replicas included), so that rows go out in id order: a turn of
    publishing is one transaction holding the outbox's advisory lock. A relay that finds it taken skips its
    turn: the one publishing goes on to the rows committed meanwhile. Rows written ahead of their instant
    (`due_at`) go out when it comes, in the order of their instants, before the rows committed for now.
    A row whose record is too large for Kafka moves to `dead_letters` (if given), and the outbox goes on.
    """

    engine: AsyncEngine
    outbox: sa.Table
    transport: Transport
    service: str
    dead_letters: sa.Table | None = None
    wakeup: Wakeup = field(default_factory=Wakeup)
    batch_size: int = 500
    batches_per_turn: int = 20  # then the transaction commits, and the lock is free a moment
    sweep_seconds: float = 1.0
    _task: asyncio.Task | None = None
    _next_due: datetime | None = None  # the earliest instant of a row written ahead, as the last turn saw it
    _turn_full: bool = False  # the last turn stopped at `batches_per_turn`: rows may be left
    _ahead_left: bool = False  # the last turn stopped reading rows written ahead while more fell due
    _through: datetime = datetime.min.replace(tzinfo=UTC)  # every row due by then is handed over
    _turned: asyncio.Event = field(default_factory=asyncio.Event)  # set (and replaced) when `_through` moves

    def start(self) -> None:
        self.transport.relay_started(self.service)
        self._task = asyncio.create_task(self._run(), name=f"{self.service}-outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.publish()
                while self._turn_full:
                    await self.publish()
                self.transport.relay_drained(self.service)
            except asyncio.CancelledError:
                raise
            except Exception:
                self._turn_full = False
                log.exception("%s outbox relay failed; retrying", self.service)
                await asyncio.sleep(1)
            timeout = self.sweep_seconds
            if self._next_due is not None:
                timeout = min(timeout, max(0.0, (self._next_due - datetime.now(UTC)).total_seconds()))
            await self.wakeup.wait(timeout)

    async def published_through(self, instant: datetime, timeout: float) -> bool:
        """Wait until this relay has handed every row due by `instant` over to the transport (or `timeout` seconds
        went by: another replica's relay may be publishing them); whether it has."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._through < instant:
                    await self._turned.wait()
        return self._through >= instant

    async def publish(self) -> int:
        """One turn: publish the rows due by now, batch after batch, until they are out or `batches_per_turn`
        are; how many (none if another relay of the outbox is publishing).

        Each batch is handed to the transport as soon as it is read, the next read while the broker acknowledges
        it; the rows are marked published at the end of the turn, each at the instant its batch was acknowledged,
        and for all to see when the turn commits. A batch the broker did not acknowledge stays unpublished for
        the next turn, and its error fails this one once the others are marked; a batch the transport refused
        fails the turn whole, and what it handed over goes again (a record too large for Kafka is not handed
        over: `_publishable` sets its row aside). Rows written ahead are locked while the turn publishes them, so
        a timer withdrawing them waits for it and then finds them sent.
        (Rows committed late with a lower id go in the next turn.)"""
        handed: list[tuple[list, asyncio.Future]] = []
        outcomes: list = []
        self._ahead_left = False
        now = datetime.now(UTC)
        async with self.engine.connect() as conn, conn.begin():
            if not (await conn.execute(_TAKE_RELAY_LOCK)).scalar():
                self._turn_full = False
                self._next_due = await self._next_instant(conn, now)  # whichever relay wakes first publishes then
                return 0
            try:
                async with contextlib.aclosing(self._due_rows(conn, now)) as due:
                    async for rows in due:
                        rows, messages = await self._publishable(conn, rows)
                        if rows:
                            handed.append((rows, _acknowledged_at(await self.transport.hand_over(messages))))
                        if len(handed) == self.batches_per_turn:
                            break
                outcomes = await asyncio.gather(*(acked for _, acked in handed), return_exceptions=True)
                await self._mark_published(conn, [(rows, at) for (rows, _), at in zip(handed, outcomes, strict=True)
                                                  if isinstance(at, datetime)])
                self._next_due = await self._next_instant(conn, now)
            finally:
                for _, acked in handed:  # failed before it was marked: published again by the next turn
                    acked.add_done_callback(lambda done: done.cancelled() or done.exception())
        failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if failed:
            raise failed[0]
        self._turn_full = len(handed) == self.batches_per_turn or self._ahead_left
        metrics.OUTBOX_BACKLOG.labels(self.service).set(self.batch_size if self._turn_full else 0)
        return sum(len(rows) for rows, _ in handed)

    async def _publishable(self, conn: AsyncConnection, rows: list) -> tuple[list, list[Message]]:
        """The rows whose record the transport can take, and their records. Those too large never can: each
        moves to the dead-letter table (consumer "<service> outbox relay", partition -1, offset its outbox id),
        where an operator finds its event, in this turn's transaction, so that the rows after it go on.
        Without a dead-letter table they stay, and fail the turn."""
        kept: list = []
        too_large: list = []
        for row in rows:
            message = _message(row)
            (kept if self.transport.fits(message) else too_large).append((row, message))
        if too_large:
            await self._set_aside(conn, too_large)
        return [r for r, _ in kept], [m for _, m in kept]

    async def _set_aside(self, conn: AsyncConnection, too_large: list[tuple]) -> None:
        if self.dead_letters is None:
            raise MessageSizeTooLargeError(f"outbox row {too_large[0][0].id} is too large to publish")
        consumer = f"{self.service} outbox relay"
        await conn.execute(self.dead_letters.insert(), [_dead_letter_row(
            consumer, replace(m, partition=-1, offset=r.id), attempts=0,
            error=f"its record (payload {len(m.value)} bytes) is larger than the {MAX_RECORD_BYTES} bytes Kafka "
                  f"takes, less {HEADROOM_BYTES} for headers added on the way") for r, m in too_large])
        await conn.execute(sa.delete(self.outbox).where(self.outbox.c.id.in_([r.id for r, _ in too_large])))
        for r, m in too_large:
            log.error("%s sets aside row %d (event %s): its payload of %d bytes is too large for Kafka", consumer,
                      r.id, m.headers.get("ce_id", b"?").decode(errors="replace"), len(m.value))
            metrics.DEAD_LETTERS.labels(consumer, r.topic).inc()

    def _handed_through(self, instant: datetime) -> None:
        if instant > self._through:
            self._through = instant
            self._turned.set()
            self._turned = asyncio.Event()

    async def _next_instant(self, conn: AsyncConnection, now: datetime) -> datetime | None:
        """When to look at the rows written ahead again: at the earliest instant after `now` one is due, or in a
        moment if one due by `now` is not published yet (another replica's relay has it, or a withdrawing timer)."""
        o = self.outbox.c
        earliest = (await conn.execute(sa.select(sa.func.min(o.due_at))
                                       .where(o.published_at.is_(None), o.due_at.is_not(None)))).scalar()
        if earliest is not None and earliest <= now:
            return now + _RETRY_DUE
        return earliest

    async def _due_rows(self, conn: AsyncConnection, now: datetime):
        """Batches of the unpublished rows due: those written ahead by their instant (read on while more fall due,
        so that instants spread over a second go out as they come, for half a turn unless the batches are full),
        then the others by id, committed by `now`; each read once the one before is handed over."""
        o = self.outbox.c
        columns = (o.id, o.topic, o.key, o.headers, o.payload, o.traceparent, o.created_at, o.due_at)
        ahead = (sa.select(*columns).where(o.published_at.is_(None), o.due_at.is_not(None))
                 .order_by(o.due_at, o.id).limit(self.batch_size).with_for_update(skip_locked=True))
        after: tuple = ()
        rows: list = []
        for read in range(self.batches_per_turn):
            if read == max(1, self.batches_per_turn // 2) and len(rows) < self.batch_size:
                self._ahead_left = True  # still falling due: the rows for now get the rest of the turn
                break
            read_at = datetime.now(UTC)
            rows = (await conn.execute(ahead.where(o.due_at <= read_at, *(
                [sa.tuple_(o.due_at, o.id) > after] if after else [])))).all()
            if rows:
                yield rows
                after = (rows[-1].due_at, rows[-1].id)
            if len(rows) < self.batch_size:  # every row due by then is handed over
                self._handed_through(read_at)
            if not rows:
                break
        current = (sa.select(*columns).where(o.published_at.is_(None), o.due_at.is_(None))
                   .order_by(o.id).limit(self.batch_size))
        after_id = 0
        while rows := (await conn.execute(current.where(o.id > after_id))).all():
            yield rows
            if len(rows) < self.batch_size:
                break
            after_id = rows[-1].id

    async def _mark_published(self, conn: AsyncConnection, batches: list[tuple[list, datetime]]) -> None:
        """Mark the rows of these batches published, each at the instant its batch was acknowledged."""
        rows = [(r.id, at) for batch, at in batches for r in batch]
        await execute_columns(conn, self._mark, rows)
        latency = metrics.PUBLISH_LATENCY.labels(self.service)
        for batch, at in batches:
            for topic, count in Counter(r.topic for r in batch).items():
                metrics.EVENTS_PUBLISHED.labels(self.service, topic).inc(count)
            for r in batch:
                latency.observe(max(0.0, (at - (r.due_at or r.created_at)).total_seconds()))

    @property
    def _mark(self) -> str:
        return (f"UPDATE {self.outbox.name} SET published_at = t.at FROM {unnest(['bigint', 'timestamptz'])} "
                f"AS t(id, at) WHERE {self.outbox.name}.id = t.id")


def _acknowledged_at(acknowledged: Awaitable) -> asyncio.Future:
    """A future of the instant `acknowledged` completed (its outcome, if it failed)."""
    async def at() -> datetime:
        await acknowledged
        return datetime.now(UTC)
    return asyncio.ensure_future(at())


def _message(row) -> Message:
    return Message(topic=row.topic, key=row.key.encode() if row.key else None, headers=headers_from_row(row),
                   value=row.payload)


# Consuming -----------------------------------------------------------------------------


Handler = Callable[[Envelope, BaseModel, UnitOfWork], Awaitable[None]]


@dataclass
class Dispatcher:
    """Runs the handler of each consumed event inside a unit of work with an inbox row.

    A record that cannot be parsed goes to the dead-letter topic at once; a handler that
    keeps failing is retried `max_attempts` times with backoff, then dead-lettered.
    """

    group: str
    handlers: dict[str, Handler]
    uow_factory: Callable[[], UnitOfWork]
    inbox: sa.Table
    transport: Transport
    dead_letters: sa.Table | None = None
    max_attempts: int = 5
    backoff_seconds: float = 0.2

    @property
    def topics(self) -> set[str]:
        from .topics import topic_for_type

        if "*" in self.handlers:
            return set(ALL)
        return {topic_for_type(t) for t in self.handlers}

    async def dispatch(self, messages: list[Message]) -> None:
        """Handle records in order: the whole batch in one unit of work, or one by one if that fails.

        One transaction per batch is what lets a consumer keep up with a storm; a batch that
        fails is rolled back whole, and each record then gets its own retries and dead letter.
        """
        prepared = [item for item in [await self._prepare(m) for m in messages] if item is not None]
        if len(prepared) > 1:
            try:
                async with self.uow_factory() as uow:
                    fresh = await claim_inbox_many(uow.conn, self.inbox, consumer=self.group,
                                                   envelopes=[envelope for _, envelope, _, _ in prepared])
                    outcomes = []
                    for item in prepared:
                        claimed = item[1].id in fresh
                        fresh.discard(item[1].id)  # the same event twice in one batch: handled once
                        outcomes.append(await self._handle_in(uow, *item, claimed=claimed))
                    await uow.commit()
            except Exception as exc:
                log.warning("%s: a batch of %d failed (%r); handling its records one by one",
                            self.group, len(prepared), exc)
            else:
                for (_, envelope, _, _), outcome in zip(prepared, outcomes, strict=True):
                    metrics.EVENTS_CONSUMED.labels(self.group, envelope.type, outcome).inc()
                return
        for item in prepared:
            await self._handle_with_retries(*item)

    async def _prepare(self, message: Message) -> tuple[Message, Envelope, BaseModel | None, Handler] | None:
        """Decode a record and find its handler; None if it is dead-lettered or not ours."""
        try:
            envelope = from_kafka(message.headers, message.value)
            handler = self.handlers.get(envelope.type) or self.handlers.get("*")
            if handler is None:
                metrics.EVENTS_CONSUMED.labels(self.group, envelope.type, "ignored").inc()
                return None
            data = parse_data(envelope) if envelope.type in self.handlers else None
        except PoisonMessage as exc:
            await self._dead_letter(message, exc, attempts=0)
            return None
        return message, envelope, data, handler

    async def _handle_in(self, uow: UnitOfWork, message: Message, envelope: Envelope, data: BaseModel | None,
                         handler: Handler, *, claimed: bool | None = None) -> str:
        """Run one handler in `uow` under the trace context the record carries, if its inbox claim holds.

        `claimed` is the outcome of a batch claim; None claims this event's inbox row here.
        """
        with tracer.start_as_current_span(
            f"{self.group} process {envelope.type}", context=context_from_headers(message.headers),
            kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.system": "kafka", "messaging.destination.name": message.topic,
                        "messaging.message.id": envelope.id, "messaging.consumer.group.name": self.group},
        ):
            if claimed is None:
                claimed = await claim_inbox(uow.conn, self.inbox, consumer=self.group, envelope=envelope)
            if not claimed:
                return "duplicate"
            log.info("%s handling %s %s", self.group, envelope.type, envelope.id)
            await handler(envelope, data, uow)
            return "processed"

    async def _handle_with_retries(self, message: Message, envelope: Envelope, data: BaseModel | None,
                                   handler: Handler) -> None:
        """Retry a failing record `max_attempts` times, then dead-letter it.

        An outage of the database is not the record's fault: it is waited out (blocking the
        partition, as it must to keep order) without using up attempts.
        """
        attempt = outages = 0
        while True:
            try:
                async with self.uow_factory() as uow:
                    outcome = await self._handle_in(uow, message, envelope, data, handler)
                    await uow.commit()
                metrics.EVENTS_CONSUMED.labels(self.group, envelope.type, outcome).inc()
                return
            except Exception as exc:
                metrics.HANDLER_ERRORS.labels(self.group, envelope.type).inc()
                if is_transient(exc):
                    outages += 1
                    log.warning("%s waits out a transient failure on %s %s: %r", self.group, envelope.type,
                                envelope.id, exc)
                    await asyncio.sleep(min(10.0, self.backoff_seconds * 2 ** min(outages, 8)))
                    continue
                attempt += 1
                log.warning("%s failed on %s %s (attempt %d/%d): %r", self.group, envelope.type, envelope.id,
                            attempt, self.max_attempts, exc)
                if attempt >= self.max_attempts:
                    await self._dead_letter(message, exc, attempts=attempt)
                    return
                await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1) * (0.5 + random.random()))

    async def _dead_letter(self, message: Message, exc: Exception, *, attempts: int) -> None:
        topic = dead_letter_topic(message.topic, self.group)
        headers = dict(message.headers)
        headers.update({
            "error": repr(exc)[:2000].encode(),
            "error_type": type(exc).__name__.encode(),
            "attempts": str(attempts).encode(),
            "original_topic": message.topic.encode(),
            "original_partition": str(message.partition).encode(),
            "original_offset": str(message.offset).encode(),
            "dead_lettered_at": datetime.now(UTC).isoformat().encode(),
        })
        log.error("%s dead-letters a record from %s@%d: %r", self.group, message.topic, message.offset, exc)
        metrics.DEAD_LETTERS.labels(self.group, topic).inc()
        metrics.EVENTS_CONSUMED.labels(self.group, headers.get("ce_type", b"?").decode(errors="replace"),
                                       "dead_lettered").inc()
        # Retries until both take it: a dead letter must not be lost either.
        await _until_done(f"store dead letter of {self.group}", lambda: self._store_dead_letter(message, headers,
                                                                                               exc, attempts))
        await _until_done(f"publish dead letter to {topic}", lambda: self.transport.send_many(
            [Message(topic=topic, key=message.key, headers=headers, value=message.value)]))

    async def _store_dead_letter(self, message: Message, headers: dict[str, bytes], exc: Exception,
                                 attempts: int) -> None:
        if self.dead_letters is None:
            return
        async with self.uow_factory() as uow:
            await uow.conn.execute(self.dead_letters.insert().values(**_dead_letter_row(
                self.group, message, headers=headers, error=repr(exc)[:2000], attempts=attempts)))
            await uow.commit()


TRANSIENT_SQLSTATES = ("40001", "40P01")  # serialization failure, deadlock detected
TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57")  # connection, insufficient resources, operator intervention


def is_transient(exc: BaseException) -> bool:
    """A failure of the infrastructure (database away, deadlock), not of the record being handled."""
    if isinstance(exc, (OSError, TimeoutError, OperationalError, InterfaceError)):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or ""
        return sqlstate in TRANSIENT_SQLSTATES or sqlstate[:2] in TRANSIENT_SQLSTATE_CLASSES
    return False


def _dead_letter_row(consumer: str, message: Message, *, error: str, attempts: int,
                     headers: dict[str, bytes] | None = None) -> dict:
    """A row of a service's `dead_letters` table: the record whole (with `headers` in place of its own, if given),
    its header values as JSONB can hold them."""
    return {"consumer": consumer, "topic": message.topic, "partition": message.partition, "offset": message.offset,
            "key": message.key, "headers": {k: _printable(v) for k, v in (headers or message.headers).items()},
            "value": message.value, "error": error, "attempts": attempts}


def _printable(value: bytes | None) -> str | None:
    """A header value as JSONB can hold it (no NUL), for the dead-letter table; the topic keeps the bytes."""
    if value is None:
        return None
    return value.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


async def _until_done(what: str, action: Callable[[], Awaitable[None]]) -> None:
    while True:
        try:
            await action()
            return
        except Exception:
            log.exception("could not %s; retrying", what)
            await asyncio.sleep(1)
