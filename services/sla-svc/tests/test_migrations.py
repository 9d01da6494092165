"""Migrations that change stored data, on a real PostgreSQL: the data written before them, read after them."""

import json
import uuid
from datetime import datetime

import sqlalchemy as sa
from alembic import command

from itsm_runtime.db import create_engine, run_alembic
from sla_svc.db import MIGRATIONS
from sla_svc.settings import Settings

STARTED, PAUSED, STOPPED = "2026-11-24T09:00:00+00:00", "2026-11-24T10:00:00+00:00", "2026-11-24T12:00:00+00:00"


async def _to(engine, schema: str, revision: str, *, down: bool = False) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await run_alembic(conn, command.downgrade if down else command.upgrade, revision, migrations_dir=MIGRATIONS,
                          schema=schema)


async def _agreement(engine) -> None:
    """The clocks' agreement, `a1`: a migration rewriting the clocks table checks their foreign key."""
    async with engine.begin() as conn:
        await conn.execute(sa.text(
            "INSERT INTO agreements (id, name, service_id, calendar_id, targets, warning_thresholds, pause_on, "
            "created_at) VALUES ('a1', 'a', 's1', '24x7', '[]', '[]', '[]', now())"))


def _entry(kind: str, at: str, key: str, **details) -> dict:
    return {"kind": kind, "at": at, "key": key, "details": details}


async def test_timeline_entries_named_by_rank_are_renamed_by_kind_and_instant_and_back(service_settings):
    schema = f"sla_mig_{uuid.uuid4().hex[:6]}"
    engine = create_engine(service_settings(Settings).database_url, schema=schema)
    try:
        await _to(engine, schema, "9c41e7a2d5b8")
        await _agreement(engine)
        ranked = [_entry("started", STARTED, "started:1", priority=1, target_seconds=14400),
                  _entry("warning", "2026-11-24T11:00:00+00:00", "warning:0.5", threshold=0.5),
                  _entry("paused", PAUSED, "paused:1", status="on_hold"),
                  _entry("resumed", PAUSED, "resumed:1", status="in_progress"),
                  _entry("stopped", STOPPED, f"stopped:1:{STOPPED}:True", met=True, elapsed_seconds=10800.0)]
        state = {"metric": "resolution", "priority": 1, "timeline": ranked,
                 "counts": {"started": 1, "warning": 1, "paused": 1, "resumed": 1, "stopped": 1}}
        published = ["started:1", "warning:0.5", "paused:1", f"stopped:1:{STOPPED}:True"]
        async with engine.begin() as conn:
            await conn.execute(sa.text(
                "INSERT INTO clocks (id, agreement_id, incident_id, service_id, metric, priority, calendar_id, stage, "
                "started_at, warnings_fired, breached, state, published) VALUES ('c1', 'a1', 'i1', 's1', "
                "'resolution', 1, '24x7', 'completed', :started, 1, false, CAST(:state AS json), "
                "CAST(:published AS json))"), {"started": datetime.fromisoformat(STARTED), "state": json.dumps(state),
                                              "published": json.dumps(published)})

        async def stored(clock_id: str = "c1") -> tuple[dict, list]:
            async with engine.connect() as conn:
                row = (await conn.execute(sa.text("SELECT state::text, published::text FROM clocks WHERE id = :id"),
                                          {"id": clock_id})).one()
            return json.loads(row[0]), json.loads(row[1])

        await _to(engine, schema, "head")
        state_after, published_after = await stored()
        assert [e["key"] for e in state_after["timeline"]] == [
            f"started:{STARTED}", "warning:0.5", f"paused:{PAUSED}", f"resumed:{PAUSED}", f"stopped:{STOPPED}:True"]
        renamed = [f"started:{STARTED}", "warning:0.5", f"paused:{PAUSED}", f"stopped:{STOPPED}:True"]
        assert published_after == sorted({*published, *renamed}), \
            "published under either name: the version before runs beside this one during a rolling upgrade"
        assert state_after["counts"] == state["counts"], "the version before reads them during a rolling upgrade"
        # a clock as this version writes it: without the ranks, which the versions since 7a1d3e5b9c2f do not read
        async with engine.begin() as conn:
            await conn.execute(sa.text(
                "INSERT INTO clocks (id, agreement_id, incident_id, service_id, metric, priority, calendar_id, stage, "
                "started_at, warnings_fired, breached, state, published) SELECT 'c2', agreement_id, 'i2', "
                "service_id, metric, priority, calendar_id, stage, started_at, warnings_fired, breached, "
                "CAST(CAST(state AS jsonb) - 'counts' AS json), published FROM clocks WHERE id = 'c1'"))

        await _to(engine, schema, "9c41e7a2d5b8", down=True)
        state_before, published_before = await stored()
        assert state_before == state and set(published) <= set(published_before)
        assert (await stored("c2"))[0] == state, "the version before 7a1d3e5b9c2f reads the ranks: added back"
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()


async def test_clock_states_become_text_without_the_plain_entry_names_and_back(service_settings):
    """e8b3f0c6d1a4: the columns become `text`, which PostgreSQL does not check as it loads them, and states are
    written without the names `entry_name` gives. Going down, the columns are `json` again and every entry has its
    name written out, as the versions before wrote it."""
    from datetime import UTC, timedelta

    from sla_svc.db import repository
    from sla_svc.domain.calendar import TwentyFourSeven
    from sla_svc.domain.clock import Clock
    from sla_svc.domain.fold import ClockSpec, Fact, fold

    schema = f"sla_text_{uuid.uuid4().hex[:6]}"
    engine = create_engine(service_settings(Settings).database_url, schema=schema)
    spec = ClockSpec(metric="resolution", targets={1: 3600.0}, thresholds=(0.5,), pause_on=("on_hold",))
    opened = Fact(event_id="e1", kind="opened", at=datetime(2026, 11, 24, 9, tzinfo=UTC), priority=1, status="new")
    held = Fact(event_id="e2", kind="status", at=opened.at + timedelta(minutes=40), status="on_hold",
                from_status="new")
    # two stops at one instant (resolved, reopened and resolved again): the second is named `#2`
    resolved = [Fact(event_id=f"e{n}", kind="status", at=opened.at + timedelta(minutes=50), status=to,
                     from_status=before) for n, before, to in [(3, "on_hold", "resolved"),
                                                                (4, "resolved", "in_progress"),
                                                                (5, "in_progress", "resolved")]]

    def clock(clock_id: str, *facts: Fact) -> Clock:
        state = fold(spec, TwentyFourSeven(), facts, now=opened.at + timedelta(hours=1))
        return Clock(id=clock_id, agreement_id="a1", incident_id=clock_id, service_id="s1", metric="resolution",
                     calendar_id="24x7", calendar_version=1, state=state, published={e.key for e in state.timeline})

    def named(c: Clock) -> dict:
        """The state as the versions before e8b3f0c6d1a4 wrote it: every entry named."""
        state = c.state.to_dict()
        for entry, e in zip(state["timeline"], c.state.timeline, strict=True):
            entry["key"] = e.key
        return state

    async def stored(clock_id: str) -> tuple[str, dict, list]:
        async with engine.connect() as conn:
            row = (await conn.execute(sa.text("SELECT pg_typeof(state)::text, state::text, published::text "
                                              "FROM clocks WHERE id = :id"), {"id": clock_id})).one()
        return row[0], json.loads(row[1]), json.loads(row[2])

    async def statistics_targets() -> set:
        async with engine.connect() as conn:
            return set((await conn.execute(sa.text(
                "SELECT attstattarget FROM pg_attribute WHERE attrelid = CAST('clocks' AS regclass) "
                "AND attname IN ('state', 'published')"))).scalars())

    try:
        await _to(engine, schema, "7a1d3e5b9c2f")
        await _agreement(engine)
        before = clock("c1", opened, held)
        async with engine.begin() as conn:
            await conn.execute(sa.text(
                "INSERT INTO clocks (id, agreement_id, incident_id, service_id, metric, priority, calendar_id, stage, "
                "started_at, warnings_fired, breached, state, published) VALUES ('c1', 'a1', 'c1', 's1', "
                "'resolution', 1, '24x7', 'paused', :started, 1, false, CAST(:state AS json), "
                "CAST(:published AS json))"), {"started": opened.at, "state": json.dumps(named(before)),
                                              "published": json.dumps(sorted(before.published))})

        await _to(engine, schema, "e8b3f0c6d1a4")
        assert (await stored("c1"))[0] == "text"
        assert await statistics_targets() == {0}, "ANALYZE leaves the JSON text out"
        async with engine.begin() as conn:
            [read] = await repository.get_clocks(conn, ["c1"])
            assert (read.state, read.published) == (before.state, before.published), "states named before read alike"
            after = clock("c2", opened, held, *resolved)
            await repository.upsert_clocks(conn, [after])
            [read] = await repository.get_clocks(conn, ["c2"])
            assert (read.state, read.published) == (after.state, after.published)
        keys = [e.get("key") for e in (await stored("c2"))[1]["timeline"]]
        assert keys[-1].endswith("#2") and keys[:-1] == [None] * (len(keys) - 1), "only the `#2` name is written"

        await _to(engine, schema, "7a1d3e5b9c2f", down=True)
        assert await stored("c1") == ("json", named(before), sorted(before.published))
        assert await stored("c2") == ("json", named(after), sorted(after.published)), "every entry named again"
        assert await statistics_targets() == {None}, "the default again"
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()
