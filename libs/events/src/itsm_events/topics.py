"""Topic names, one per owning context, and the dead-letter naming rule."""

INCIDENT = "itsm.incident.events"
SLA = "itsm.sla.events"
CHANGE = "itsm.change.events"
CMDB = "itsm.cmdb.events"
NOTIFY = "itsm.notify.events"

ALL = (INCIDENT, SLA, CHANGE, CMDB, NOTIFY)


def topic_for_type(event_type: str) -> str:
    """The topic owned by the context named in `itsm.<context>.<verb>`."""
    parts = event_type.split(".")
    if len(parts) < 3 or parts[0] != "itsm":
        raise ValueError(f"event type {event_type!r} is not of the form itsm.<context>.<verb>")
    topic = f"itsm.{parts[1]}.events"
    if topic not in ALL:
        raise ValueError(f"no topic for context {parts[1]!r}")
    return topic


def dead_letter_topic(topic: str, group: str) -> str:
    """`<topic>.<group>.dlq`: where a consumer group parks messages it cannot process."""
    return f"{topic}.{group}.dlq"
