"""What sla-svc consumes: event type -> handler."""

from itsm_events.bus import Handler

from .handlers import IncidentEventHandlers


def subscriptions(incidents: IncidentEventHandlers) -> dict[str, Handler]:
    return {
        # start a response and/or resolution clock for each agreement covering the incident
        "itsm.incident.opened": incidents.on_incident_opened,
        # stop (responded, resolved), pause and resume clocks
        "itsm.incident.status_changed": incidents.on_status_changed,
    }
