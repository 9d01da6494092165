"""The consumer side on real PostgreSQL: batches in one transaction, inbox dedup, retries, dead letters."""

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from itsm_events import Dispatcher, InProcessTransport, Message, UnitOfWork, new_event, schemas, to_kafka, topics
from itsm_events.bus import is_transient
from itsm_events.outbox import dead_letter_table, messaging_tables
from itsm_events.sql import execute_columns
from itsm_runtime.db import create_engine

metadata = sa.MetaData()
outbox, inbox = messaging_tables(metadata)
dead_letters = dead_letter_table(metadata)
effects = sa.Table("effects", metadata, sa.Column("event_id", sa.Text, primary_key=True),
                   sa.Column("title", sa.Text))


@pytest.fixture
async def engine(database_url):
    schema = f"dispatch_{uuid.uuid4().hex[:8]}"
    url = database_url.replace("postgresql://", "postgresql+asyncpg://")
    engine = create_engine(url, schema=schema)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


def opened(title: str) -> tuple[str, Message]:
    incident_id = str(uuid.uuid4())
    envelope = new_event(schemas.IncidentOpened(
        incident_id=incident_id, number="INC1", title=title, service_id="svc", impact=1, urgency=1, priority=1,
        status="new", opened_at=datetime.now(UTC)), source="/test")
    headers, value = to_kafka(envelope)
    return envelope.id, Message(topic=topics.INCIDENT, key=incident_id.encode(), headers=headers, value=value)


async def record_effect(envelope, data, uow: UnitOfWork) -> None:
    if data.title == "boom":
        raise RuntimeError("handler bug")
    await uow.conn.execute(effects.insert().values(event_id=envelope.id, title=data.title))


async def started_transport() -> InProcessTransport:
    transport = InProcessTransport()
    await transport.start()
    return transport


def dispatcher(engine, transport) -> Dispatcher:
    return Dispatcher(group="test-svc", handlers={"itsm.incident.opened": record_effect},
                      uow_factory=lambda: UnitOfWork(engine, outbox, source="/test"), inbox=inbox,
                      transport=transport, dead_letters=dead_letters, max_attempts=2, backoff_seconds=0.01)


async def titles(engine) -> list[str]:
    async with engine.connect() as conn:
        return sorted((await conn.execute(sa.select(effects.c.title))).scalars())


async def test_a_batch_with_duplicates_has_one_effect_per_event(engine):
    transport = await started_transport()
    a_id, a = opened("a")
    _, b = opened("b")
    await dispatcher(engine, transport).dispatch([a, b, a])
    await dispatcher(engine, transport).dispatch([a])
    assert await titles(engine) == ["a", "b"]
    async with engine.connect() as conn:
        claimed = (await conn.execute(sa.select(inbox.c.event_id).where(inbox.c.event_id == a_id))).all()
    assert len(claimed) == 1


async def test_a_failing_record_is_dead_lettered_and_the_rest_of_its_batch_is_kept(engine):
    transport = await started_transport()
    _, a = opened("a")
    boom_id, boom = opened("boom")
    _, c = opened("c")
    await dispatcher(engine, transport).dispatch([a, boom, c])
    assert await titles(engine) == ["a", "c"]
    [dead] = transport.dead_letters
    assert dead.topic == "itsm.incident.events.test-svc.dlq"
    assert dead.headers["ce_id"] == boom_id.encode()
    assert dead.headers["error_type"] == b"RuntimeError" and dead.headers["attempts"] == b"2"
    assert dead.value == boom.value
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(inbox).where(inbox.c.event_id == boom_id))).first() is None
        stored = (await conn.execute(sa.select(dead_letters))).one()
    assert stored.consumer == "test-svc" and stored.value == boom.value and "handler bug" in stored.error
    assert stored.headers["ce_id"] == boom_id and stored.attempts == 2


async def test_poison_is_dead_lettered_without_retries(engine):
    transport = await started_transport()
    _, good = opened("good")
    poison = Message(topic=topics.INCIDENT, key=b"k", value=b"{",
                     headers={"ce_type": b"itsm.incident.opened", "x-odd": b"nul\x00byte"})
    await dispatcher(engine, transport).dispatch([poison, good])
    assert await titles(engine) == ["good"]
    [dead] = transport.dead_letters
    assert dead.headers["error_type"] == b"PoisonMessage" and dead.headers["attempts"] == b"0"
    assert dead.headers["x-odd"] == b"nul\x00byte", "the topic keeps the original bytes"
    async with engine.connect() as conn:
        stored = (await conn.execute(sa.select(dead_letters.c.headers, dead_letters.c.value))).one()
    assert stored.value == b"{" and stored.headers["x-odd"] == "nul\ufffdbyte"


async def test_an_unreachable_database_is_transient_and_bad_data_is_not(engine):
    unreachable = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none", schema="x")
    with pytest.raises(Exception) as refused:
        async with unreachable.connect():
            pass
    await unreachable.dispose()
    assert is_transient(refused.value)
    with pytest.raises(Exception) as bad_data:
        async with engine.begin() as conn:
            await conn.execute(effects.insert().values(event_id="x", title="nul \x00 byte"))
    assert not is_transient(bad_data.value)


async def test_a_statement_sent_to_the_driver_first_is_part_of_the_unit_of_work(engine):
    """SQLAlchemy begins its transaction with its own first statement; rows written straight through asyncpg
    before any must still go only if the unit of work commits."""
    rows = [(str(uuid.uuid4()), "test.driver", "t", b"{}")]
    insert = ("INSERT INTO outbox (event_id, event_type, topic, headers, payload) "
              "SELECT e, t, p, '{}'::jsonb, v FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) "
              "AS r(e, t, p, v)")
    async with UnitOfWork(engine, outbox, source="/test") as uow:
        await execute_columns(uow.conn, insert, rows)  # no commit: rolled back
    async with UnitOfWork(engine, outbox, source="/test") as uow:
        await execute_columns(uow.conn, insert, rows)
        await uow.commit()
    async with engine.connect() as conn:
        written = (await conn.execute(sa.select(outbox.c.event_id).where(outbox.c.event_type == "test.driver"))).all()
    assert [row.event_id for row in written] == [rows[0][0]]
