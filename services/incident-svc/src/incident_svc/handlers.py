"""Use cases of incident-svc: commands in, domain events out through the outbox."""

import logging
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from itsm_events import Envelope, UnitOfWork, schemas

from .db import alerts as alert_store
from .db import outages as outage_store
from .db import repository
from .db.alerts import Integration
from .domain import alerts, outages
from .domain.alerts import TriggerOutcome
from .domain.model import AlertAppended, Incident, Opened, PriorityChanged, Resolved, Status, StatusChanged
from .domain.outages import Availability, Outage, OutagePolicy, ServiceState, Step

log = logging.getLogger("incident_svc")


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
            case AlertAppended(at=at):
                data = schemas.IncidentAlertAppended(**common, dedup_key=event.dedup_key,
                                                     integration_id=event.integration_id, summary=event.summary,
                                                     severity=event.severity, source=event.source, received_at=at)
            case _:
                raise TypeError(f"no public event for {event!r}")
        uow.emit(data, key=incident.id, time=event.at)
    incident.events.clear()


async def open_incident(uow: UnitOfWork, *, title: str, service_id: str, impact: int, urgency: int,
                        description: str | None = None, customer_id: str | None = None,
                        opened_at: datetime | None = None, alerts_received: int = 0) -> Incident:
    incident = Incident.open(
        id=str(uuid.uuid4()), number=await repository.next_number(uow.conn), title=title,
        description=description, service_id=service_id, customer_id=customer_id, impact=impact,
        urgency=urgency, opened_at=(opened_at or datetime.now(UTC)).astimezone(UTC),
    )
    for _ in range(alerts_received):
        incident.record_alert(at=incident.opened_at)
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


async def save_and_publish(uow: UnitOfWork, incident: Incident) -> None:
    if incident.events:
        await repository.save(uow.conn, incident)
        publish(uow, incident)


# Alert intake (PagerDuty Events API v2) ---------------------------------------------------


async def create_integration(uow: UnitOfWork, *, name: str, service_id: str,
                             customer_id: str | None = None) -> Integration:
    """Register an alert source for a service; its routing key is 32 lowercase hex characters, like PagerDuty's."""
    integration = Integration(id=str(uuid.uuid4()), routing_key=secrets.token_hex(16), name=name,
                              service_id=service_id, customer_id=customer_id, created_at=datetime.now(UTC))
    await alert_store.add_integration(uow.conn, integration)
    return integration


@dataclass(frozen=True)
class AlertEvent:
    """Command: one Events API v2 event, already validated, for an integration."""

    action: str
    dedup_key: str | None
    body: dict[str, Any] = field(repr=False)  # the event as sent, without its routing key
    summary: str | None = None
    source: str | None = None
    severity: str | None = None
    timestamp: datetime | None = None
    component: str | None = None
    group: str | None = None
    class_: str | None = None
    custom_details: Any = None


async def handle_alert(uow: UnitOfWork, *, integration: Integration, event: AlertEvent,
                       now: datetime | None = None) -> str:
    """Apply a trigger, acknowledge or resolve to the incident of its dedup key; return the dedup key."""
    at = alerts.event_time(event.timestamp, now=now or datetime.now(UTC))
    dedup_key = event.dedup_key or alerts.generated_dedup_key(integration_id=integration.id, event=event.body)
    state = await alert_store.lock_dedup_key(uow.conn, integration_id=integration.id, dedup_key=dedup_key)
    incident = await repository.get(uow.conn, state.incident_id, for_update=True) if state else None
    if event.action == "trigger":
        await _trigger(uow, integration=integration, event=event, dedup_key=dedup_key, at=at, state=state,
                       incident=incident)
    elif incident is None:
        log.info("%s for unknown dedup key %r of integration %s: nothing to do", event.action, dedup_key,
                 integration.id)
    elif event.action == "acknowledge":
        if alerts.acknowledge(incident, at=at):
            await save_and_publish(uow, incident)
    elif alerts.resolve(incident, at=at, notes=f"Resolved by a resolve event from integration {integration.name}"):
        await save_and_publish(uow, incident)
    return dedup_key


async def _trigger(uow: UnitOfWork, *, integration: Integration, event: AlertEvent, dedup_key: str, at: datetime,
                   state: alert_store.AlertState | None, incident: Incident | None) -> None:
    fingerprint = alerts.fingerprint(event.body)
    outcome = alerts.trigger_outcome(incident=incident, last_fingerprint=state.fingerprint if state else None,
                                     fingerprint=fingerprint)
    if outcome == TriggerOutcome.RETRY:
        return
    impact, urgency = alerts.levels_for(event.severity)
    if outcome == TriggerOutcome.OPEN:
        incident = await open_incident(
            uow, title=event.summary, service_id=integration.service_id, customer_id=integration.customer_id,
            impact=impact, urgency=urgency, opened_at=at, alerts_received=1,
            description=alerts.describe(source=event.source, component=event.component, group=event.group,
                                        class_=event.class_, custom_details=event.custom_details))
    else:
        incident.append_alert(integration_id=integration.id, dedup_key=dedup_key, summary=event.summary,
                              severity=event.severity, source=event.source, at=at)
        incident.escalate(impact=impact, urgency=urgency, at=alerts.not_before(at, incident.opened_at))
        await save_and_publish(uow, incident)
    await alert_store.record_alert(
        uow.conn, integration_id=integration.id, dedup_key=dedup_key, incident_id=incident.id,
        fingerprint=fingerprint, summary=event.summary, severity=event.severity, source=event.source,
        event=event.body, received_at=at, new_incident=outcome == TriggerOutcome.OPEN)


# Outage incidents from CMDB availability -----------------------------------------------------


async def put_outage_policy(uow: UnitOfWork, *, service_id: str, policy: OutagePolicy) -> datetime:
    at = datetime.now(UTC)
    await outage_store.put_policy(uow.conn, service_id=service_id, policy=policy, at=at)
    return at


async def on_ci_created(envelope: Envelope, data: schemas.CiCreated, uow: UnitOfWork) -> None:
    """Keep name and criticality of business services: the read model outage incidents take impact from."""
    if data.type != "business_service":
        return
    await outage_store.remember_service(uow.conn, service_id=data.ci_id, name=data.name,
                                        criticality=data.criticality, at=envelope.time)


async def on_service_availability_changed(envelope: Envelope, data: schemas.ServiceAvailabilityChanged,
                                          uow: UnitOfWork) -> None:
    """Open, update or end the service's outage incident; observations apply in event-time order."""
    status = Availability(data.status)
    at = data.observed_at.astimezone(UTC)
    last = await outage_store.lock_service_state(uow.conn, data.service_id)
    outage = await outage_store.latest_outage(uow.conn, data.service_id)
    policy = await outage_store.get_policy(uow.conn, data.service_id) or OutagePolicy()
    step = outages.plan(last=last, outage=outage, policy=policy, status=status, observed_at=at)
    if step == Step.STALE:
        log.info("availability of %s observed at %s is older than the last applied (%s): ignored",
                 data.service_id, at.isoformat(), last.observed_at.isoformat())
        return
    await outage_store.save_service_state(uow.conn, ServiceState(service_id=data.service_id, status=status,
                                                                 observed_at=at))
    if step == Step.OPEN:
        await _open_outage(uow, service_id=data.service_id, status=status, at=at, causes=data.cause_ci_ids,
                           previous=outage)
    elif step == Step.UPDATE:
        outage.observe(status, at=at, cause_ci_ids=data.cause_ci_ids)
        await outage_store.save_outage(uow.conn, outage)
        incident = await repository.get(uow.conn, outage.incident_id, for_update=True)
        if incident.is_open:
            incident.reassess(impact=None, urgency=outages.URGENCY[status],
                              at=alerts.not_before(at, incident.opened_at))
            await save_and_publish(uow, incident)
    elif step == Step.END:
        outage.end(at=at)
        await outage_store.save_outage(uow.conn, outage)
        if policy.auto_resolve:
            incident = await repository.get(uow.conn, outage.incident_id, for_update=True)
            name = await _service_name(uow, data.service_id)
            if incident.is_open:
                incident.change_status(Status.RESOLVED, at=alerts.not_before(at, incident.opened_at),
                                       resolution_notes=f"{name} is back up (observed {at.isoformat()}).")
                await save_and_publish(uow, incident)


async def _service_name(uow: UnitOfWork, service_id: str) -> str:
    known = await outage_store.known_service(uow.conn, service_id)
    return known[0] if known else service_id


async def _open_outage(uow: UnitOfWork, *, service_id: str, status: Availability, at: datetime, causes: list[str],
                       previous: Outage | None) -> None:
    """Start an outage; it joins the previous outage's incident if nobody resolved that one yet."""
    incident = None
    if previous is not None:
        incident = await repository.get(uow.conn, previous.incident_id, for_update=True)
        if incident is not None and not incident.is_open:
            incident = None
    if incident is not None:
        incident.reassess(impact=None, urgency=outages.URGENCY[status],
                          at=alerts.not_before(at, incident.opened_at))
        await save_and_publish(uow, incident)
    else:
        known = await outage_store.known_service(uow.conn, service_id)
        name, criticality = known if known else (service_id, None)
        incident = await open_incident(
            uow, title=f"Outage: {name} is {status}", service_id=service_id, impact=outages.impact_for(criticality),
            urgency=outages.URGENCY[status], opened_at=at,
            description=(f"The CMDB reports business service {name} ({service_id}) {status} since {at.isoformat()}."
                         + (f" Cause CIs: {', '.join(causes)}." if causes else "")))
    await outage_store.add_outage(uow.conn, Outage.start(id=str(uuid.uuid4()), service_id=service_id,
                                                         incident_id=incident.id, status=status, at=at,
                                                         cause_ci_ids=list(causes)))
