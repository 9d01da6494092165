"""Use cases of incident-svc: commands in, domain events out through the outbox."""

import uuid
from datetime import UTC, datetime

from itsm_events import UnitOfWork, schemas

from .db import repository
from .domain.model import Incident, Opened, PriorityChanged, Resolved, Status, StatusChanged


def publish(uow: UnitOfWork, incident: Incident) -> None:
    """Map the aggregate's recorded domain events to public events in the outbox."""
    for event in incident.events:
        common = {"incident_id": incident.id, "service_id": incident.service_id,
                  "customer_id": incident.customer_id}
        match event:
            case Opened(at=at):
                data = schemas.IncidentOpened(**common, number=incident.number, title=incident.title,
                                              impact=incident.impact, urgency=incident.urgency,
                                              priority=incident.priority, status=str(Status.NEW), opened_at=at)
            case StatusChanged(from_status=f, to_status=t, at=at):
                data = schemas.IncidentStatusChanged(**common, priority=incident.priority, from_status=str(f),
                                                     to_status=str(t), hold_reason=incident.hold_reason,
                                                     changed_at=at)
            case PriorityChanged(from_priority=f, to_priority=t, at=at):
                data = schemas.IncidentPriorityChanged(**common, impact=incident.impact, urgency=incident.urgency,
                                                       from_priority=f, to_priority=t, changed_at=at)
            case Resolved(at=at):
                data = schemas.IncidentResolved(**common, priority=incident.priority,
                                                resolution_notes=incident.resolution_notes, resolved_at=at)
            case _:
                raise TypeError(f"no public event for {event!r}")
        uow.emit(data, key=incident.id, time=event.at)
    incident.events.clear()


async def open_incident(uow: UnitOfWork, *, title: str, service_id: str, impact: int, urgency: int,
                        description: str | None = None, customer_id: str | None = None,
                        opened_at: datetime | None = None) -> Incident:
    incident = Incident.open(
        id=str(uuid.uuid4()), number=await repository.next_number(uow.conn), title=title,
        description=description, service_id=service_id, customer_id=customer_id, impact=impact,
        urgency=urgency, opened_at=(opened_at or datetime.now(UTC)).astimezone(UTC),
    )
    await repository.add(uow.conn, incident)
    publish(uow, incident)
    return incident


async def update_incident(uow: UnitOfWork, incident: Incident, *, changes: dict,
                          at: datetime | None = None) -> Incident:
    """Apply a PATCH: reassessment first, then field edits, then the status move."""
    at = at or datetime.now(UTC)
    if "impact" in changes or "urgency" in changes:
        incident.reassess(impact=changes.get("impact"), urgency=changes.get("urgency"), at=at)
    if "assignee" in changes:
        incident.assignee = changes["assignee"]
        incident.updated_at = at
    if "status" in changes and changes["status"] is not None:
        incident.change_status(Status(changes["status"]), at=at, hold_reason=changes.get("hold_reason"),
                               resolution_notes=changes.get("resolution_notes"))
    else:
        if changes.get("hold_reason") is not None and incident.status == Status.ON_HOLD:
            incident.hold_reason = changes["hold_reason"]
        if changes.get("resolution_notes") is not None:
            incident.resolution_notes = changes["resolution_notes"]
        incident.updated_at = at
    await repository.save(uow.conn, incident)
    publish(uow, incident)
    return incident
