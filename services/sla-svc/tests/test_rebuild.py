"""`sla-svc rebuild` replays the topics into a fresh schema and gives the state the live service holds."""

import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from itsm_events import new_event, schemas, to_kafka, topics
from itsm_runtime.testing import eventually
from sla_svc.db.tables import (
    burn_alerts, clocks, compliance, incident_facts, objective_breaches, review_breaches, reviews,
)
from sla_svc import rebuild as rebuild_module
from sla_svc.rebuild import SchemaInUse, rebuild, shares
from sla_testing import clocks_of, make_agreement

# each table as compared: what differs by design is left out (insertion order; when a burn alert was last
# seen changing, which is the wall time of a live check; which timeline entries went out as events). The
# rebuild walks through history and may see an alert fire and clear that the live service learned of only
# after it was over: the alerts firing now are the state compared.
COMPARED = {
    clocks: ("created_seq", "published"),
    incident_facts: (),
    objective_breaches: (),
    burn_alerts: ("changed_at",),
    reviews: ("created_seq",),
    review_breaches: (),
    compliance: ("version", "updated_at"),
}
# what compliance holds that moves with the instant it is computed: uptime so far, burn rates, a rolling window
MOVING = ("computed_at", "actual_percent", "long_rate", "short_rate", "window_start", "window_end")


def _steady(value):
    if isinstance(value, dict):
        return {k: _steady(v) for k, v in value.items() if k not in MOVING}
    if isinstance(value, list):
        return [_steady(v) for v in value]
    return value


async def snapshot(engine, schema: str, agreement_ids: list[str]) -> dict:
    """Every compared row of the agreements (and their incidents' facts), sorted."""
    result = {}
    async with engine.connect() as conn:
        await conn.execute(sa.text(f'SET search_path TO "{schema}"'))
        incident_ids = sa.select(clocks.c.incident_id).where(clocks.c.agreement_id.in_(agreement_ids))
        for table, left_out in COMPARED.items():
            columns = [c for c in table.columns if c.name not in left_out]
            stmt = sa.select(*columns)
            if "agreement_id" in table.c:
                stmt = stmt.where(table.c.agreement_id.in_(agreement_ids))
            if table is incident_facts:
                stmt = stmt.where(table.c.incident_id.in_(incident_ids))
            if table is review_breaches:
                stmt = stmt.where(table.c.review_id.in_(sa.select(reviews.c.id).where(
                    reviews.c.agreement_id.in_(agreement_ids))))
            if table is burn_alerts:  # an alert that is not firing: absent, or seen firing and cleared since
                stmt = stmt.where(table.c.firing)
            result[table.name] = sorted(tuple(json.dumps(_steady(v), sort_keys=True, default=str) for v in row)
                                        for row in (await conn.execute(stmt)).all())
    return result


def availability(service_id: str, status: str, at: datetime) -> tuple:
    data = schemas.ServiceAvailabilityChanged(service_id=service_id, status=status, observed_at=at, cause_ci_ids=[])
    return topics.CMDB, service_id, data


def incident_event(data) -> tuple:
    return topics.INCIDENT, data.incident_id, data


async def test_rebuild_from_the_topics_gives_the_live_clocks_breaches_reviews_and_alerts(
        sla, sla_app, incidents, kafka_producer, service_settings):
    now = datetime.now(UTC).replace(microsecond=0)
    agreement = await make_agreement(
        sla, effective_from=(now - timedelta(days=2)).isoformat(),
        targets=[{"metric": "resolution", "priority": 1, "within": "PT2S"},
                 {"metric": "response", "priority": 1, "within": "PT1H"},
                 {"metric": "resolution", "priority": 3, "within": "PT4H"}],
        objectives=[{"kind": "availability", "target": 99.9, "window": "calendar_month"},
                    {"kind": "availability", "target": 99.5, "window": "P7D"},
                    {"kind": "resolution_ratio", "target": 90, "within": "PT2S", "window": "calendar_week"}])
    service_id = agreement["service_id"]
    # a second agreement on the service counts on a business calendar
    calendar = (await sla.post("/v1/calendars", json={
        "name": "Berlin long days", "timezone": "Europe/Berlin",
        "hours": {day: [["06:00", "22:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}})).json()
    office = await make_agreement(sla, service_id=service_id, within="PT8H", calendar_id=calendar["id"],
                                  effective_from=(now - timedelta(days=2)).isoformat())
    # weekly objectives on another service, whose outage and incident three weeks ago are reported late
    weekly = await make_agreement(sla, effective_from=(now - timedelta(days=40)).isoformat(),
                                  objectives=[{"kind": "availability", "target": 99.9, "window": "calendar_week"},
                                              {"kind": "availability", "target": 99.9, "window": "P7D"},
                                              {"kind": "resolution_ratio", "target": 80, "within": "PT1H",
                                               "window": "calendar_week"}])
    forgotten = str(uuid.uuid4())
    # through incident-svc: a P1 that breaches and is resolved late, a P3 raised to P1, one reopened
    late = (await incidents.post("/v1/incidents", json={"title": "late", "service_id": service_id,
                                                        "impact": 1, "urgency": 1})).json()
    raised = (await incidents.post("/v1/incidents", json={"title": "raised", "service_id": service_id,
                                                          "impact": 2, "urgency": 2})).json()
    reopened = (await incidents.post("/v1/incidents", json={"title": "again", "service_id": service_id,
                                                            "impact": 3, "urgency": 1})).json()
    await incidents.patch(f"/v1/incidents/{raised['id']}", json={"impact": 1, "urgency": 1})
    for status in ("in_progress", "on_hold", "in_progress", "resolved", "in_progress"):
        await incidents.patch(f"/v1/incidents/{reopened['id']}", json={"status": status, "hold_reason": "vendor",
                                                                        "resolution_notes": "fixed"})
    # straight onto the topics: an incident whose events arrive out of order and twice, and a backfilled outage
    backfilled = str(uuid.uuid4())
    hold = schemas.IncidentStatusChanged(incident_id=backfilled, service_id=service_id, priority=3,
                                         from_status="new", to_status="on_hold",
                                         changed_at=now - timedelta(hours=5))
    records = [incident_event(hold), incident_event(hold), incident_event(schemas.IncidentOpened(
        incident_id=backfilled, number="INC0000009", title="backfilled", service_id=service_id, impact=2,
        urgency=2, priority=3, status="new", opened_at=now - timedelta(hours=6))),
        availability(service_id, "up", now - timedelta(hours=1)),
        availability(service_id, "down", now - timedelta(hours=2)),
        availability(service_id, "down", now - timedelta(hours=2)),
        availability(weekly["service_id"], "up", now - timedelta(days=21, hours=-1)),
        availability(weekly["service_id"], "down", now - timedelta(days=21)),
        incident_event(schemas.IncidentOpened(
            incident_id=forgotten, number="INC0000010", title="forgotten", service_id=weekly["service_id"],
            impact=1, urgency=1, priority=1, status="new", opened_at=now - timedelta(days=21))),
        incident_event(schemas.IncidentStatusChanged(
            incident_id=forgotten, service_id=weekly["service_id"], priority=1, from_status="new",
            to_status="resolved", changed_at=now - timedelta(days=21, hours=-2)))]
    for topic, key, data in records:
        headers, value = to_kafka(new_event(data, source="/test"))
        await kafka_producer.send_and_wait(topic, value=value, key=key.encode(), headers=list(headers.items()))

    async def targets_of(incident_id: str) -> dict:
        """The first agreement's target clocks of the incident, by metric."""
        return {c["metric"]: c for c in await clocks_of(sla, incident_id)
                if c["agreement_id"] == agreement["id"] and c["objective_id"] is None}

    async def settled():
        late_clocks, raised_clocks = await targets_of(late["id"]), await targets_of(raised["id"])
        return (len(late_clocks) == 2 and late_clocks["resolution"]["breached"]
                and raised_clocks["resolution"]["priority"] == 1 and raised_clocks["resolution"]["breached"]
                and await clocks_of(sla, backfilled))
    await eventually(settled, timeout=30)
    await incidents.patch(f"/v1/incidents/{late['id']}", json={"status": "resolved", "resolution_notes": "late"})
    await eventually(lambda: _stage(sla, late["id"], "resolution", "completed"))
    runtime = sla_app.state.runtime
    assert await runtime.transport.caught_up(timeout=30)

    async def weekly_breached() -> bool:  # the late outage's week and 7 days, the late incident's week
        reviews = (await sla.get("/v1/reviews", params={"agreement_id": weekly["id"]})).json()["items"]
        return sum(b["kind"] == "objective" for r in reviews for b in r["breaches"]) == 3
    await eventually(weekly_breached, timeout=30)

    settings = service_settings(type(runtime.settings), db_schema=runtime.schema)
    target = f"rebuilt_{uuid.uuid4().hex[:6]}"
    report = await rebuild(settings, schema=target)
    assert report.records >= len(records) and report.clocks >= 6

    ids = [agreement["id"], office["id"], weekly["id"]]
    await sla_app.state.runtime.state["compliance"].refresh(ids)  # live compliance settles a moment after
    live, rebuilt = await snapshot(runtime.engine, runtime.schema, ids), await snapshot(runtime.engine, target, ids)
    assert len(live["clocks"]) == 14, ("response and resolution for each incident that was P1, resolution for "
                                       "P3, a ratio ticket for each incident, and the office's P1 resolution; "
                                       "the forgotten incident's resolution and ratio ticket")
    assert len(live["objective_breaches"]) == 5 and live["burn_alerts"] and len(live["review_breaches"]) >= 6
    for table in live:
        assert rebuilt[table] == live[table], table
    assert '"breached"' in {row[1] for row in live["compliance"]}, "both objectives and the late P1 breached"
    async with runtime.engine.connect() as conn:  # what the live service published is not published again
        assert (await conn.execute(sa.text(f'SELECT count(*) FROM "{target}".outbox'))).scalar() == 0
        analyzed = set((await conn.execute(sa.text(  # bulk-loaded tables come with statistics to plan queries by
            "SELECT tablename, attname FROM pg_stats WHERE schemaname = :schema"), {"schema": target})).all())
        options = (await conn.execute(sa.text(  # loaded into full pages, the clocks keep room for timers' updates
            "SELECT reloptions FROM pg_class WHERE oid = CAST(:table AS regclass)"),
            {"table": f'"{target}".clocks'})).scalar()
    assert {("clocks", "agreement_id"), ("incident_facts", "incident_id")} <= analyzed
    assert ("clocks", "state") not in analyzed  # not the JSON states: no query selects clocks by them
    assert options == ["fillfactor=70"]


async def _stage(sla, incident_id: str, metric: str, stage: str) -> bool:
    return any(c["metric"] == metric and c["stage"] == stage for c in await clocks_of(sla, incident_id))


async def test_rebuild_refuses_the_live_schema_and_an_existing_one_unless_replacing(sla_app, service_settings):
    runtime = sla_app.state.runtime
    settings = service_settings(type(runtime.settings), db_schema=runtime.schema)
    with pytest.raises(SchemaInUse):
        await rebuild(settings, schema=runtime.schema)
    target = f"rebuilt_{uuid.uuid4().hex[:6]}"
    await rebuild(settings, schema=target)
    with pytest.raises(SchemaInUse):
        await rebuild(settings, schema=target)
    assert (await rebuild(settings, schema=target, replace=True)).schema == target


async def test_a_failed_rebuild_leaves_its_schema_marked_incomplete_and_a_rerun_completes_it(
        sla, sla_app, kafka_producer, service_settings, monkeypatch):
    runtime = sla_app.state.runtime
    settings = service_settings(type(runtime.settings), db_schema=runtime.schema)
    await _an_incident_opened(kafka_producer)
    target = f"rebuilt_{uuid.uuid4().hex[:6]}"

    async def broken(*args):  # inherited by the forked worker processes
        raise RuntimeError("a worker failed")

    monkeypatch.setattr(rebuild_module, "_replay_share", broken)
    with pytest.raises(RuntimeError, match="a worker failed"):
        await rebuild(settings, schema=target)
    assert (await _comment(runtime.engine, target)).startswith("sla-svc rebuild: incomplete")
    monkeypatch.undo()
    await rebuild(settings, schema=target, replace=True)
    assert (await _comment(runtime.engine, target)).startswith("sla-svc rebuild: complete")


async def test_the_workers_read_while_the_schema_is_made_and_stop_when_it_cannot_be(
        sla, sla_app, kafka_producer, service_settings, monkeypatch, tmp_path):
    """The worker processes read their partitions while the main process makes the fresh schema, and store them
    once it is made; should making it fail, they store nothing, and the rebuild fails with its error."""
    runtime = sla_app.state.runtime
    settings = service_settings(type(runtime.settings), db_schema=runtime.schema)
    await _an_incident_opened(kafka_producer)
    replay_topics, migrate = rebuild_module.replay_topics, rebuild_module.migrate

    async def reading(*args, **kwargs):  # in the forked worker processes, which inherit it
        replayed = await replay_topics(*args, **kwargs)
        (tmp_path / f"read-{os.getpid()}").touch()
        return replayed

    async def migrating_once_read(*args, **kwargs):  # in the main process
        await eventually(lambda: any(tmp_path.glob("read-*")), timeout=30)
        await migrate(*args, **kwargs)

    monkeypatch.setattr(rebuild_module, "replay_topics", reading)
    monkeypatch.setattr(rebuild_module, "migrate", migrating_once_read)
    target = f"rebuilt_{uuid.uuid4().hex[:6]}"
    report = await rebuild(settings, schema=target, processes=2)
    assert report.records >= 1 and report.step_seconds["workers: waited for the schema"] > 0
    assert (await _comment(runtime.engine, target)).startswith("sla-svc rebuild: complete")

    async def undroppable(*args, **kwargs):  # after the migrations: the tables are there, with their keys
        raise RuntimeError("the indexes could not be dropped")

    monkeypatch.setattr(rebuild_module, "_drop_indexes", undroppable)
    with pytest.raises(RuntimeError, match="the indexes could not be dropped"):
        await rebuild(settings, schema=target, replace=True, processes=2)
    async with runtime.engine.connect() as conn:
        assert (await conn.execute(sa.text(f'SELECT count(*) FROM "{target}".incident_facts'))).scalar() == 0


async def _an_incident_opened(kafka_producer) -> None:
    """An opening on the incident topic, so that the topic exists and a rebuild has a record to replay."""
    opened = schemas.IncidentOpened(incident_id=str(uuid.uuid4()), number="INC0000001", title="t", service_id="s",
                                    impact=3, urgency=3, priority=5, status="new", opened_at=datetime.now(UTC))
    headers, value = to_kafka(new_event(opened, source="/test"))
    await kafka_producer.send_and_wait(topics.INCIDENT, value=value, key=opened.incident_id.encode(),
                                       headers=list(headers.items()))


async def _comment(engine, schema: str) -> str:
    async with engine.connect() as conn:
        return (await conn.execute(sa.text("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace "
                                           "WHERE nspname = :schema"), {"schema": schema})).scalar()


def test_the_worker_processes_are_two_per_core_this_process_may_run_on():
    """Not the machine's cores: a container or `taskset` may allow this process fewer."""
    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(allowed)})
        assert rebuild_module.usable_cores() == 1 and rebuild_module.default_processes() == 2
    finally:
        os.sched_setaffinity(0, allowed)
    assert rebuild_module.default_processes() == 2 * len(allowed)


def test_the_report_names_the_partitions_whose_first_records_are_gone():
    offsets = {("itsm.incident.events", 1): (120, 500), ("itsm.incident.events", 0): (0, 400),
               ("itsm.cmdb.events", 2): (7, 7)}
    assert rebuild_module.records_gone(offsets) == {"itsm.cmdb.events[2]": 7, "itsm.incident.events[1]": 120}


def test_the_replay_keeps_the_events_it_consumes_and_counts_the_invalid_ones():
    """Each record's schema is looked up by its type and version headers once per pair met; a type sla-svc does
    not consume is skipped, a record that is not a valid event of a type it consumes is counted as poison."""
    from collections import namedtuple

    from sla_svc.handlers import fact_of

    Record = namedtuple("Record", "headers value")
    opened = schemas.IncidentOpened(incident_id="i1", number="INC1", title="t", service_id="s1", impact=1, urgency=1,
                                    priority=1, status="new", opened_at=datetime(2026, 11, 25, 9, tzinfo=UTC))

    def record(event_type: str, value: bytes = opened.model_dump_json().encode(), version: bytes | None = b"1",
               event_id: str | None = "e1") -> Record:
        headers = [("ce_type", event_type.encode())] + ([("ce_id", event_id.encode())] if event_id else [])
        return Record(headers + ([("ce_dataversion", version)] if version is not None else []), value)

    replayed = rebuild_module.Replayed([], [])
    for r in [record("itsm.incident.opened"), record("itsm.incident.opened", event_id="e2", version=None),
              record("itsm.change.created"), record("itsm.incident.opened", version=b"9"),
              record("itsm.incident.opened", version=b"one"), record("itsm.incident.opened", event_id=None),
              record("itsm.incident.opened", value=b"{not json"), record("itsm.incident.opened", value=b"{}"),
              record("itsm.change.created")]:
        rebuild_module._take(replayed, r)
    assert replayed.facts == [fact_of("e1", opened), fact_of("e2", opened)], "version 1 when the header is absent"
    assert (replayed.records, replayed.poison) == (9, 5)
    assert len(replayed.models) == 4, "one look-up per pair of headers met"


def test_the_partitions_are_shared_out_by_their_records_the_biggest_first():
    sizes = {("a", 0): 100, ("a", 1): 90, ("a", 2): 80, ("b", 0): 0, ("b", 1): 5}
    assert shares(sizes, 2) == [[("a", 0), ("b", 1)], [("a", 1), ("a", 2)]]
    assert shares(sizes, 8) == [[("a", 0)], [("a", 1)], [("a", 2)], [("b", 1)]], "empty partitions left out"
    assert shares({}, 4) == []


async def test_the_rebuild_command_line(sla_app, service_settings):
    runtime = sla_app.state.runtime
    settings = runtime.settings
    env = {**os.environ, "SLA_DATABASE_URL": settings.database_url, "SLA_DB_SCHEMA": runtime.schema,
           "SLA_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers, "SLA_LOG_JSON": "false"}
    target = f"rebuilt_{uuid.uuid4().hex[:6]}"

    async def run(*args: str) -> dict:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sla_svc.main", "rebuild", "--schema", target, *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        return json.loads(out.decode().strip().splitlines()[-1])

    report = await run()
    assert report["schema"] == target and report["records"] > 0 and report["processes"] >= 1
    again = await run("--replace", "--processes", "0")  # every partition in the command's own process
    assert again["processes"] == 0 and again["records"] >= report["records"]


async def test_the_keys_of_the_bulk_loaded_tables_are_built_as_indexes_first_and_added_on_them(
        sla_app, service_settings):
    """Every index, those of the primary and unique keys too, is built on its own (several at once); the key
    then only takes its index over. Adding a key by its definition would build its index again, one at a time."""
    from itsm_runtime.db import create_engine, migrate
    from sla_svc.db import MIGRATIONS

    runtime = sla_app.state.runtime
    schema = f"keys_{uuid.uuid4().hex[:6]}"
    engine = create_engine(service_settings(type(runtime.settings)).database_url, schema=schema)
    try:
        await migrate(engine, migrations_dir=MIGRATIONS, schema=schema)
        async with engine.connect() as conn:
            transaction = await conn.begin()
            indexes = await rebuild_module._drop_indexes(conn, schema, rebuild_module.BULK_LOADED)
            await transaction.rollback()
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()
    built = {statement.split(" ON ")[0].split()[-1] for statement in indexes.builds}
    assert {"clocks_pkey", "uq_clock_per_target", "incident_facts_pkey", "ix_clocks_incident_id"} <= built
    assert f'ALTER TABLE "{schema}"."clocks" ADD CONSTRAINT "clocks_pkey" PRIMARY KEY USING INDEX "clocks_pkey"' \
        in indexes.constraints
    assert any("uq_clock_per_target\" UNIQUE USING INDEX" in c for c in indexes.constraints)
    assert any("FOREIGN KEY (agreement_id) REFERENCES agreements(id)" in c for c in indexes.constraints)
    assert indexes.fill_factors == [f'ALTER TABLE "{schema}"."clocks" SET (fillfactor = 70)']


async def test_an_incident_whose_events_are_on_several_partitions_is_rebuilt_whole(
        sla, sla_app, kafka_producer, service_settings):
    """Its topic was given more partitions, or an event was produced again under another key: each worker reads
    a part of the incident's events. The rebuild folds its clocks from all of them, and an event read from two
    partitions is one fact, as the live service has them. The clocks a worker folded from its part (the
    opening alone: both breached long ago) leave no breach behind."""
    now = datetime.now(UTC).replace(microsecond=0)
    agreement = await make_agreement(sla, effective_from=(now - timedelta(days=1)).isoformat(),
                                     targets=[{"metric": "resolution", "priority": 1, "within": "PT1H"},
                                              {"metric": "response", "priority": 1, "within": "PT10M"}])
    runtime = sla_app.state.runtime
    incident_id, unopened = str(uuid.uuid4()), str(uuid.uuid4())
    common = {"incident_id": incident_id, "service_id": agreement["service_id"], "priority": 1}

    def status(incident: str, from_status: str, to_status: str, hours_ago: float):
        return new_event(schemas.IncidentStatusChanged(
            **{**common, "incident_id": incident}, from_status=from_status, to_status=to_status, hold_reason="vendor",
            changed_at=now - timedelta(hours=hours_ago)), source="/test", subject=incident)

    async def produce(*placed) -> None:
        for event, partition in placed:
            headers, value = to_kafka(event)
            await kafka_producer.send_and_wait(topics.INCIDENT, value=value, key=event.subject.encode(),
                                               headers=list(headers.items()), partition=partition)

    async def facts_stored(incident: str, count: int) -> bool:
        async with runtime.engine.connect() as conn:
            return (await conn.execute(sa.select(sa.func.count()).select_from(incident_facts).where(
                incident_facts.c.incident_id == incident))).scalar() == count

    held, resolved = status(incident_id, "new", "on_hold", 2 + 5 / 6), status(incident_id, "on_hold", "resolved", 1)
    unopened_change = status(unopened, "new", "in_progress", 1)
    # the opening last, so that the live service folds the clocks once, from every fact
    await produce((held, 1), (held, 2), (resolved, 2), (unopened_change, 1), (unopened_change, 2))
    await eventually(lambda: facts_stored(incident_id, 2), timeout=30)
    opened = new_event(schemas.IncidentOpened(number="INC0000042", title="split", impact=1, urgency=1, status="new",
                                              opened_at=now - timedelta(hours=3), **common),
                       source="/test", subject=incident_id)
    await produce((opened, 0), (opened, 1))

    async def stopped() -> bool:
        return [c["stage"] for c in await clocks_of(sla, incident_id)] == ["completed", "completed"]
    await eventually(stopped, timeout=30)

    settings = service_settings(type(runtime.settings), db_schema=runtime.schema)
    target = f"rebuilt_{uuid.uuid4().hex[:6]}"
    report = await rebuild(settings, schema=target, processes=64)  # a worker per partition
    assert report.processes >= 3 and report.split_incidents >= 2  # the two incidents above
    await runtime.state["compliance"].refresh([agreement["id"]])  # live compliance settles a moment after
    live, rebuilt = (await snapshot(runtime.engine, runtime.schema, [agreement["id"]]),
                     await snapshot(runtime.engine, target, [agreement["id"]]))
    assert len(live["clocks"]) == 2 and len(live["incident_facts"]) == 3
    assert len(live["review_breaches"]) == 1, "the response clock breached; the resolution clock was met"
    for table in live:
        assert rebuilt[table] == live[table], table
    async with runtime.engine.connect() as conn:
        counts = (await conn.execute(sa.text(
            f'SELECT (SELECT count(*) FROM "{target}".clocks), '
            f'(SELECT count(DISTINCT incident_id) FROM "{target}".incident_facts), '
            f'(SELECT count(*) FROM "{target}".incident_facts WHERE incident_id = :unopened)'),
            {"unopened": unopened})).one()
    assert counts == (report.clocks, report.incidents, 1)


async def test_the_replay_reads_each_partition_from_its_first_offset_to_its_end_and_stops_at_deleted_records(
        kafka_bootstrap, kafka_producer):
    """read_topics fetches with aiokafka's client, not its consumer: from a span's first offset up to (not
    including) its end, however the producer batched the records; records deleted (by retention) before they were
    read raise instead of being skipped."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
    from aiokafka.structs import TopicPartition

    topic = f"test.replay.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        for n in range(30):  # 3 batches of 5 on each partition
            await kafka_producer.send(topic, value=f"{n}".encode(), partition=n % 2)
            if n % 10 == 9:
                await kafka_producer.flush()

        async def read(spans) -> dict[int, list[int]]:
            got: dict[int, list[int]] = {0: [], 1: []}

            def take(records) -> None:
                for record in records:
                    got[int(record.value) % 2].append(record.offset)
            await rebuild_module.read_topics(kafka_bootstrap, [topic], take, spans=spans)
            return got

        assert await read(None) == {0: list(range(15)), 1: list(range(15))}, "first offset to the end as of now"
        assert await read({(topic, 0): (3, 12), (topic, 1): (7, 7)}) == {0: list(range(3, 12)), 1: []}
        await admin.delete_records({TopicPartition(topic, 0): RecordsToDelete(before_offset=6)})
        with pytest.raises(rebuild_module.RecordsGone, match=rf"{topic}\[0\] from offset 0"):
            await read({(topic, 0): (0, 15), (topic, 1): (0, 15)})
        assert (await read(None))[0] == list(range(6, 15)), "from the first offset left"
    finally:
        await admin.delete_topics([topic])
        await admin.close()


async def test_the_replay_fetches_again_after_losing_its_connection_to_the_broker(
        kafka_bootstrap, kafka_producer, monkeypatch):
    """The connection to the broker is lost while a fetch is out (it is sent before the records before it are
    handed over): the fetch is made again from the same offset, and every record comes once."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.conn import CloseReason

    topic = f"test.replay.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    clients = []

    class Client(rebuild_module.AIOKafkaClient):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            clients.append(self)
    monkeypatch.setattr(rebuild_module, "AIOKafkaClient", Client)
    monkeypatch.setattr(rebuild_module, "PARTITION_FETCH_MAX_BYTES", 200)  # a batch or so a fetch
    retried = []
    monkeypatch.setattr(rebuild_module.log, "warning", lambda message, *args: retried.append(message % args))
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        for n in range(40):  # batches of 4
            await kafka_producer.send(topic, value=f"{n}".encode(), partition=0)
            if n % 4 == 3:
                await kafka_producer.flush()
        got, lost = [], []

        def take(records) -> None:
            got.extend(record.offset for record in records)
            if len(got) >= 8 and not lost:  # the next fetch is out: its connection goes
                for conn in list(clients[0]._conns.values()):
                    conn.close(reason=CloseReason.CONNECTION_BROKEN)
                lost.append(len(got))
        await rebuild_module.read_topics(kafka_bootstrap, [topic], take)
        assert lost, "the connection was closed while the replay ran"
        assert [message.split(" after ")[0] for message in retried] == ["fetching again"], retried
        assert got == list(range(40)), "every record once, in order"
    finally:
        await admin.delete_topics([topic])
        await admin.close()
