"""What incident-svc consumes: event type -> handler. Nothing yet; outage intake comes with the CMDB work."""

from itsm_events.bus import Handler

HANDLERS: dict[str, Handler] = {}
