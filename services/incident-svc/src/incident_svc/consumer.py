"""What incident-svc consumes: event type -> handler."""

from itsm_events.bus import Handler

from . import handlers

HANDLERS: dict[str, Handler] = {
    # read model of business services (name, criticality): the impact of their outage incidents
    "itsm.cmdb.ci_created": handlers.on_ci_created,
    # a business service went down, degraded or came back: open, update or resolve its outage incident
    "itsm.cmdb.service_availability_changed": handlers.on_service_availability_changed,
}
