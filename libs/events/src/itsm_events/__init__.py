"""itsm_events: the single contract package of the platform's event backbone."""

from . import schemas, topics
from .bus import Dispatcher, InProcessTransport, KafkaTransport, Message, OutboxRelay, Transport
from .envelope import Envelope, PoisonMessage, from_kafka, new_event, to_kafka, to_structured
from .outbox import EventRows, UnitOfWork, Wakeup, claim_inbox, messaging_tables

__all__ = [
    "Dispatcher", "Envelope", "EventRows", "InProcessTransport", "KafkaTransport", "Message", "OutboxRelay",
    "PoisonMessage", "Transport", "UnitOfWork", "Wakeup", "claim_inbox", "from_kafka", "messaging_tables",
    "new_event", "schemas", "to_kafka", "to_structured", "topics",
]
