"""What sla-svc consumes: event type -> handler."""

from itsm_events.bus import Handler

from .objectives import Objectives
from .handlers import Clocks


def subscriptions(clocks: Clocks, objectives: Objectives) -> dict[str, Handler]:
    return {
        # each is stored as a fact of the incident, whose clocks are then folded again:
        # opening starts a response and/or resolution clock for each agreement covering the incident,
        "itsm.incident.opened": clocks.on_incident_event,
        # statuses stop (responded, resolved), pause, resume and reopen them,
        "itsm.incident.status_changed": clocks.on_incident_event,
        # and a priority change moves them to the new priority's target
        "itsm.incident.priority_changed": clocks.on_incident_event,
        # the whole service's availability, for availability objectives and their error budgets
        "itsm.cmdb.service_availability_changed": objectives.on_service_availability_changed,
    }
