"""The outbox relay on real PostgreSQL and Kafka: every row published and marked, in id order per key, batch
after batch (the next handed over while the one before is acknowledged); one relay of an outbox at a time.
Rows a timer writes ahead go out at their instant, not before, unless the timer withdraws them first."""

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from itsm_events import EventRows, KafkaTransport, OutboxRelay, UnitOfWork, schemas, topics
from itsm_events.outbox import dead_letter_table, messaging_tables, withdraw
from itsm_runtime.db import create_engine
from itsm_runtime.testing import read_topic

metadata = sa.MetaData()
outbox, _ = messaging_tables(metadata)
dead_letters = dead_letter_table(metadata)


@pytest.fixture
async def engine(database_url):
    schema = f"relay_{uuid.uuid4().hex[:8]}"
    engine = create_engine(database_url.replace("postgresql://", "postgresql+asyncpg://"), schema=schema)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
async def transport(kafka_bootstrap):
    transport = KafkaTransport(bootstrap_servers=kafka_bootstrap, client_id="relay-test")
    await transport.start()
    yield transport
    await transport.stop()


@pytest.fixture
async def relays(engine, transport):
    """Relays of the test's outbox, stopped after it (which lets their connections, and the lock, go)."""
    made = []

    def relay(service: str, **options) -> OutboxRelay:
        made.append(OutboxRelay(engine=engine, outbox=outbox, transport=transport, service=service, **options))
        return made[-1]

    yield relay
    for each in made:
        await each.stop()


async def add_rows(engine, topic: str, keys: list[str], *, padding: int = 0) -> list[str]:
    """One outbox row per key, in this order (its payload `padding` bytes longer); their event ids."""
    ids = [str(uuid.uuid4()) for _ in keys]
    async with engine.begin() as conn:
        await conn.execute(outbox.insert(), [
            {"event_id": event_id, "event_type": "test.relayed", "topic": topic, "key": key,
             "headers": {"ce_id": event_id}, "payload": json.dumps({"n": n, "pad": "x" * padding}).encode()}
            for n, (event_id, key) in enumerate(zip(ids, keys, strict=True))])
    return ids


def event_id_of(record) -> str:
    return dict(record.headers)["ce_id"].decode()


async def test_rows_go_out_in_id_order_per_key_and_are_marked_published(
        engine, transport, relays, kafka_bootstrap):
    topic = f"test.relay.{uuid.uuid4().hex[:8]}"
    await transport.ensure_topics([topic])
    keys = [f"key-{n % 4}" for n in range(23)]
    ids = await add_rows(engine, topic, keys)
    relay = relays("relay-test", batch_size=3)

    assert await relay.publish() == 23
    assert await relay.publish() == 0  # nothing left unpublished

    records = await read_topic(kafka_bootstrap, topic, until=lambda records: len(records) >= 23)
    assert sorted(event_id_of(r) for r in records) == sorted(ids)
    for key in set(keys):  # a key's rows are on one partition, in the order they were written
        assert [event_id_of(r) for r in records if r.key == key.encode()] == \
            [event_id for event_id, k in zip(ids, keys, strict=True) if k == key]
    async with engine.connect() as conn:
        unpublished = (await conn.execute(sa.select(sa.func.count()).select_from(outbox)
                                          .where(outbox.c.published_at.is_(None)))).scalar()
    assert unpublished == 0


async def test_a_second_relay_of_the_outbox_publishes_nothing_while_the_first_holds_the_lock(
        engine, transport, relays):
    topic = f"test.relay.{uuid.uuid4().hex[:8]}"
    await transport.ensure_topics([topic])
    await add_rows(engine, topic, ["k"] * 5)
    first, second = relays("relay-lock", batch_size=2), relays("relay-lock", batch_size=2)
    async with engine.begin() as conn:  # what the first relay holds while it publishes
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('outbox:' || current_schema()))"))
        assert await second.publish() == 0
    assert await first.publish() == 5


async def test_records_sent_in_batches_land_where_send_puts_their_key_and_full_batches_keep_the_order(
        engine, transport, relays, kafka_bootstrap):
    """Without tracing the relay sends a record batch per partition: a key must land on the partition a record
    sent alone would (the Java client's murmur2), and a partition whose records fill several batches (512 KiB
    each) must get them in order."""
    topic = f"test.relay.{uuid.uuid4().hex[:8]}"
    await transport.ensure_topics([topic])
    keys = [f"key-{n % 3}" for n in range(30)]
    ids = await add_rows(engine, topic, keys, padding=100_000)  # ten rows of 100 kB per key
    relay = relays("relay-batches")

    assert await relay.publish() == 30

    records = await read_topic(kafka_bootstrap, topic, until=lambda records: len(records) >= 30)
    for key in set(keys):
        assert [event_id_of(r) for r in records if r.key == key.encode()] == \
            [event_id for event_id, k in zip(ids, keys, strict=True) if k == key]
        alone = await transport._producer.send_and_wait(topic, key=key.encode(), value=b"alone")
        assert {r.partition for r in records if r.key == key.encode()} == {alone.partition}


async def test_a_relay_whose_connections_are_lost_goes_on(
        engine, transport, relays, kafka_bootstrap):
    topic = f"test.relay.{uuid.uuid4().hex[:8]}"
    await transport.ensure_topics([topic])
    relay = relays("relay-lost", sweep_seconds=0.1)
    relay.start()
    first = await add_rows(engine, topic, ["k"])
    await read_topic(kafka_bootstrap, topic, until=lambda records: len(records) >= 1)

    async with engine.connect() as conn:  # e.g. PostgreSQL restarted, or the connections dropped
        ended = (await conn.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = current_schema() AND pid <> pg_backend_pid()"))).scalars().all()
    assert ended and all(ended)
    try:
        second = await add_rows(engine, topic, ["k", "k"])
    except sa.exc.DBAPIError as lost:  # this write met a dead connection before the relay did: once more
        assert lost.connection_invalidated
        second = await add_rows(engine, topic, ["k", "k"])

    records = await read_topic(kafka_bootstrap, topic, until=lambda records: len(records) >= 3)
    assert [event_id_of(r) for r in records] == first + second
    await relay.stop()
    assert engine.sync_engine.pool.checkedout() == 0, "the lost connection gave its place in the pool back"


def written_ahead(at: datetime, timer: str, marks: list[str]) -> EventRows:
    """Events a timer writes ahead of `at`, one per mark."""
    events = EventRows("/relay-test", ahead_of=at, timer=timer)
    for mark in marks:
        events.emit(schemas.SlaBreached(clock_id=timer, agreement_id="a", incident_id=timer, service_id="s",
                                        metric="resolution", priority=1, deadline=at, breached_at=at),
                    key=timer, time=at, mark=mark)
    return events


async def write_ahead(engine, *events: EventRows) -> None:
    async with UnitOfWork(engine, outbox, source="/relay-test") as uow:
        for each in events:
            uow.add(each)
        await uow.commit()


async def test_rows_written_ahead_go_out_at_their_instant_not_before(engine, transport, relays, kafka_bootstrap):
    """The relay publishes the rows for now at once, and wakes itself at a row's instant (no commit wakes it then,
    no sweep comes) to publish it; a row due later stays."""
    relay = relays("relay-ahead", sweep_seconds=60)  # no sweep comes before the instants
    await transport.ensure_topics([topics.SLA])
    now = datetime.now(UTC)
    sooner, later = f"t-{uuid.uuid4()}", f"t-{uuid.uuid4()}"
    instants = {sooner: now + timedelta(seconds=1), later: now + timedelta(minutes=10)}
    await write_ahead(engine, *(written_ahead(at, timer, [timer]) for timer, at in instants.items()))
    topic = f"test.relay.{uuid.uuid4().hex[:8]}"
    await transport.ensure_topics([topic])
    await add_rows(engine, topic, ["k"])

    assert await relay.publish() == 1  # the row for now only
    relay.start()
    records = await read_topic(kafka_bootstrap, topics.SLA, until=lambda records: any(
        r.key == sooner.encode() for r in records))

    async with engine.connect() as conn:
        published = dict((await conn.execute(sa.select(outbox.c.mark, outbox.c.published_at)
                                              .where(outbox.c.mark.is_not(None)))).all())
    assert published[sooner] >= instants[sooner]
    assert [r.timestamp >= int(instants[sooner].timestamp() * 1000) for r in records if r.key == sooner.encode()] \
        == [True]
    assert published[later] is None and not any(r.key == later.encode() for r in records)


async def test_a_timer_withdraws_what_it_wrote_ahead_until_it_falls_due(engine, relays):
    """Withdrawing deletes a timer's rows not due yet and tells the marks of those due: published or about to be
    (the relay may hold them), so the timer counts them as sent."""
    now = datetime.now(UTC)
    mine, other = f"t-{uuid.uuid4()}", f"t-{uuid.uuid4()}"
    await write_ahead(engine, written_ahead(now - timedelta(seconds=1), mine, ["warning:0.5"]),
                      written_ahead(now + timedelta(minutes=5), mine, ["breached"]),
                      written_ahead(now + timedelta(minutes=5), other, ["breached"]))

    async with engine.begin() as conn:
        assert await withdraw(conn, outbox, [mine], now) == {mine: {"warning:0.5": now - timedelta(seconds=1)}}
    assert await relays("relay-withdrawn").publish() == 1  # the warning: due; the breach of `mine`: withdrawn
    async with engine.begin() as conn:
        left = (await conn.execute(sa.select(outbox.c.timer, outbox.c.mark, outbox.c.published_at)
                                   .order_by(outbox.c.id))).all()
        assert [(r.timer, r.mark, r.published_at is not None) for r in left] == [
            (mine, "warning:0.5", True), (other, "breached", False)]
        assert await withdraw(conn, outbox, [mine, other], now + timedelta(minutes=6)) == {
            mine: {"warning:0.5": now - timedelta(seconds=1)}, other: {"breached": now + timedelta(minutes=5)}}, \
            "due by then: no longer withdrawn"


class Gated:
    """A transport that holds a relay's turn at its first hand-over until `gate` is set."""

    def __init__(self, transport: KafkaTransport):
        self.transport, self.gate, self.reached = transport, asyncio.Event(), asyncio.Event()

    async def hand_over(self, messages):
        self.reached.set()
        await self.gate.wait()
        return await self.transport.hand_over(messages)

    def __getattr__(self, name):
        return getattr(self.transport, name)


async def test_a_row_the_relay_is_publishing_is_sent_not_withdrawn(engine, transport):
    """A relay locks the rows written ahead that it publishes: a timer withdrawing one meanwhile (its clock
    changed, seen from an instant just before the row's) waits for the turn, then finds it sent."""
    await transport.ensure_topics([topics.SLA])
    timer, at = f"t-{uuid.uuid4()}", datetime.now(UTC)
    await write_ahead(engine, written_ahead(at, timer, ["breached"]))
    gated = Gated(transport)
    relay = OutboxRelay(engine=engine, outbox=outbox, transport=gated, service="relay-gated")
    turn = asyncio.ensure_future(relay.publish())
    await gated.reached.wait()  # the row is read and about to go out
    async with engine.connect() as conn, conn.begin():
        withdrawing = asyncio.ensure_future(withdraw(conn, outbox, [timer], at - timedelta(milliseconds=5)))
        await asyncio.sleep(0.3)
        assert not withdrawing.done(), "waits for the turn publishing the row"
        gated.gate.set()
        assert await turn == 1
        assert await withdrawing == {timer: {"breached": at}}
    async with engine.connect() as conn:
        [row] = (await conn.execute(sa.select(outbox.c.published_at).where(outbox.c.timer == timer))).all()
    assert row.published_at is not None


class Slow:
    """A transport that takes `seconds` to hand each batch over."""

    def __init__(self, transport: KafkaTransport, seconds: float):
        self.transport, self.seconds = transport, seconds

    async def hand_over(self, messages):
        await asyncio.sleep(self.seconds)
        return await self.transport.hand_over(messages)

    def __getattr__(self, name):
        return getattr(self.transport, name)


async def test_rows_falling_due_all_the_time_leave_the_rows_for_now_half_a_turn(engine, transport, kafka_bootstrap):
    """Rows written ahead that keep falling due while a turn reads them (one every 40 ms, a batch handed over in
    50 ms) are read for half a turn; the rows committed for now go out in the other half, not after them."""
    await transport.ensure_topics([topics.SLA])
    start = datetime.now(UTC)
    await write_ahead(engine, *(written_ahead(start + timedelta(milliseconds=40 * n), f"t-{uuid.uuid4()}", ["w"])
                                for n in range(100)))
    topic = f"test.relay.{uuid.uuid4().hex[:8]}"
    await transport.ensure_topics([topic])
    current = await add_rows(engine, topic, ["k"])
    relay = OutboxRelay(engine=engine, outbox=outbox, transport=Slow(transport, 0.05), service="relay-trickle",
                        batch_size=100, batches_per_turn=4)

    await relay.publish()

    async with engine.connect() as conn:
        published = (await conn.execute(sa.select(outbox.c.published_at)
                                        .where(outbox.c.event_id == current[0]))).scalar()
        ahead_left = (await conn.execute(sa.select(sa.func.count()).where(
            outbox.c.timer.is_not(None), outbox.c.published_at.is_(None)))).scalar()
    assert published is not None, "the row for now went out in the same turn"
    assert ahead_left > 0 and relay._turn_full, "rows written ahead are left to the next turn, at once"


async def test_a_row_too_large_for_kafka_is_set_aside_as_a_dead_letter_and_the_rows_after_it_go_out(
        engine, transport, relays, kafka_bootstrap):
    """Handed over, its batch would fail, and every later batch to its partition too (the idempotent producer's
    sequence broken): the outbox would stop. It moves to the dead-letter table with its event, whole."""
    topic = f"test.relay.{uuid.uuid4().hex[:8]}"
    await transport.ensure_topics([topic])
    before = await add_rows(engine, topic, ["a", "b"])
    too_large = await add_rows(engine, topic, ["a"], padding=2 * 1024 * 1024)
    after = await add_rows(engine, topic, ["a", "c"])
    relay = relays("relay-large", batch_size=10, dead_letters=dead_letters)

    assert await relay.publish() == 4
    assert await relay.publish() == 0
    records = await read_topic(kafka_bootstrap, topic, until=lambda got: len(got) >= 4)
    assert [event_id_of(r) for r in records if r.key == b"a"] == [before[0], after[0]]
    assert sorted(event_id_of(r) for r in records) == sorted(before + after)
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(outbox).where(
            outbox.c.published_at.is_(None)))).scalar() == 0
        (letter,) = (await conn.execute(sa.select(dead_letters))).all()
    assert (letter.consumer, letter.topic, letter.partition) == ("relay-large outbox relay", topic, -1)
    assert letter.headers["ce_id"] == too_large[0] and letter.key == b"a" and len(letter.value) > 2 * 1024 * 1024
    assert "larger than" in letter.error


def test_a_record_that_fits_still_fits_with_the_headers_it_may_gain_on_its_way(transport):
    """A row stored outside any span has no trace context: the instrumentation adds one as it sends the record.
    A consumer that gives up on it adds its dead-letter headers. Neither may take it past what Kafka takes."""
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    from itsm_events.bus import MAX_RECORD_BYTES, Message

    headers = {"ce_id": str(uuid.uuid4()).encode(), "ce_type": b"test.relayed", "content-type": b"application/json"}
    size = DefaultRecordBatchBuilder.estimate_size_in_bytes(b"key", b"", list(headers.items()))
    largest = next(Message(topic="t", key=b"key", headers=headers, value=b"x" * n)
                   for n in range(MAX_RECORD_BYTES - size, 0, -1)
                   if transport.fits(Message(topic="t", key=b"key", headers=headers, value=b"x" * n)))
    assert not transport.fits(Message(topic="t", key=b"key", headers=headers, value=largest.value + b"x"))
    gained = {**headers, "traceparent": b"00-" + b"0" * 32 + b"-" + b"0" * 16 + b"-01", "error": b"e" * 2000,
              "error_type": b"ValidationError", "attempts": b"5", "original_topic": b"itsm.incident.events",
              "original_partition": b"2", "original_offset": b"123456789",
              "dead_lettered_at": datetime.now(UTC).isoformat().encode()}
    assert DefaultRecordBatchBuilder.estimate_size_in_bytes(
        largest.key, largest.value, list(gained.items())) <= MAX_RECORD_BYTES


async def test_domain_topics_are_created_to_keep_every_record_and_others_as_the_broker_keeps_them(
        transport, kafka_bootstrap):
    """The domain topics are the event log a rebuild replays from its first offset: not cut after a week."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    log_topic = f"test.log.{uuid.uuid4().hex[:8]}"
    dead_letters = f"{log_topic}.group.dlq"
    await transport.ensure_topics([log_topic, dead_letters], kept_whole=[log_topic])
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, configs={"retention.ms": None})
             for name in (log_topic, dead_letters)])
        retention = {resource[3]: {entry[0]: entry[1] for entry in resource[4]}["retention.ms"]
                     for resource in response.resources}
    finally:
        await admin.close()
    assert retention[log_topic] == "-1"
    assert retention[dead_letters] == str(168 * 3600 * 1000), "the broker's default (deploy/local/kafka)"
