"""The outbox relay on real PostgreSQL and Kafka: every row published and marked, in id order per key, batch
after batch (the next handed over while the one before is acknowledged); one relay of an outbox at a time."""

import json
import uuid

import pytest
import sqlalchemy as sa

from itsm_events import KafkaTransport, OutboxRelay
from itsm_events.outbox import messaging_tables
from itsm_runtime.db import create_engine
from itsm_runtime.testing import read_topic

metadata = sa.MetaData()
outbox, _ = messaging_tables(metadata)


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
