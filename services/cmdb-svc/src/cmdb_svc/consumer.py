"""What cmdb-svc consumes: event type -> handler. Nothing yet; the CMDB is fed through its API and signals."""

from itsm_events.bus import Handler

HANDLERS: dict[str, Handler] = {}
