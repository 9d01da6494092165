"""How far back an agreement's next objective check looks, kept with the tickets that changed, on real PostgreSQL."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import sqlalchemy as sa

from sla_svc.db import repository
from sla_testing import make_agreement


async def test_a_check_takes_the_committed_rechecks_without_waiting_on_a_ticket_being_written(sla, sla_app):
    """A timer batch writing a ticket of the agreement must not hold up its check (nor the check it): they lock in
    different orders, which deadlocked while a marker was one row updated in place."""
    agreement = await make_agreement(sla, within="PT1H")
    runtime = sla_app.state.runtime
    first = datetime.now(UTC) - timedelta(days=21)
    later = first + timedelta(hours=1)

    async def write(conn, since: datetime) -> None:
        await repository.recheck_from(conn, [SimpleNamespace(agreement_id=agreement["id"], started_at=since,
                                                             objective_id="objective-1")])

    async with runtime.uow() as uow:
        await write(uow.conn, later)
        await write(uow.conn, first)
        await uow.commit()
    async with runtime.uow() as writing:
        await write(writing.conn, later)  # not committed while the check runs
        async with runtime.uow() as checking:
            await checking.conn.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
            assert await repository.take_recheck(checking.conn, agreement["id"]) == first, "the earliest committed"
            await checking.commit()
        await writing.commit()
    async with runtime.uow() as checking:
        assert await repository.take_recheck(checking.conn, agreement["id"]) == later
        assert await repository.take_recheck(checking.conn, agreement["id"]) is None, "taken once"
        await checking.commit()
