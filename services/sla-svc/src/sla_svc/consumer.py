"""What sla-svc consumes: event type -> handler."""

from itsm_events.bus import Handler

from .availability import AvailabilityObjectives
from .handlers import IncidentEventHandlers


def subscriptions(incidents: IncidentEventHandlers, objectives: AvailabilityObjectives) -> dict[str, Handler]:
    return {
        # start a response and/or resolution clock for each agreement covering the incident
        "itsm.incident.opened": incidents.on_incident_opened,
        # stop (responded, resolved), pause and resume clocks
        "itsm.incident.status_changed": incidents.on_status_changed,
        # the whole service's availability, for availability objectives and their error budgets
        "itsm.cmdb.service_availability_changed": objectives.on_service_availability_changed,
    }
