"""What change-svc consumes: event type -> handler. Nothing yet; CMDB impact and incident links come later."""

from itsm_events.bus import Handler

HANDLERS: dict[str, Handler] = {}
