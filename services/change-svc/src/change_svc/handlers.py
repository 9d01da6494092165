"""Use cases of change-svc: commands in, domain events out through the outbox."""

import uuid
from datetime import UTC, datetime

from itsm_events import UnitOfWork, schemas

from .db import repository
from .domain.model import Change, Requested, check_window


def publish(uow: UnitOfWork, change: Change) -> None:
    """Map the aggregate's recorded domain events to public events in the outbox."""
    for event in change.events:
        match event:
            case Requested(at=at):
                data = schemas.ChangeRequested(change_id=change.id, number=change.number, title=change.title,
                                               type=str(change.type), service_id=change.service_id,
                                               risk=str(change.risk), planned_start=change.planned_start,
                                               planned_end=change.planned_end)
            case _:
                raise TypeError(f"no public event for {event!r}")
        uow.emit(data, key=change.id, time=at)
    change.events.clear()


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None and value.utcoffset() is not None else value


async def request_change(uow: UnitOfWork, *, title: str, type: str, description: str | None = None,
                         service_id: str | None = None, risk: str | None = None,
                         planned_start: datetime | None = None, planned_end: datetime | None = None) -> Change:
    """Record a change request with the next CHG number; its risk is derived when not given."""
    planned_start, planned_end = _utc(planned_start), _utc(planned_end)
    check_window(planned_start, planned_end)  # before taking a number: a rejected request leaves no gap
    change = Change.request(
        id=str(uuid.uuid4()), number=await repository.next_number(uow.conn), title=title, type=type,
        description=description, service_id=service_id, risk=risk, planned_start=planned_start,
        planned_end=planned_end, requested_at=datetime.now(UTC),
    )
    await repository.add(uow.conn, change)
    publish(uow, change)
    return change
