"""Notification rules: which subscriptions want an event, and what a delivery attempt's outcome means."""

import base64
import random
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

WILDCARD = "*"
# notify's own events reach a subscription only when it names them: a "*" subscriber whose
# deliveries die must not be sent an event about that, which could die in turn.
OWN_EVENT_PREFIX = "itsm.notify."
FILTER_FIELDS = ("service_id", "customer_id")
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


class Channel(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"
    CHAT = "chat"


SUPPORTED_CHANNELS = frozenset({Channel.WEBHOOK})


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    DEAD = "dead"


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"


class UnsupportedChannel(ValueError):
    def __init__(self, channel: str):
        super().__init__(f"channel {channel!r} is not supported yet (supported: "
                         f"{', '.join(sorted(SUPPORTED_CHANNELS))})")
        self.channel = channel


@dataclass
class Subscription:
    id: str
    channel: Channel
    target: str
    event_types: list[str]
    filter: dict[str, str] | None
    secret: str
    active: bool
    created_at: datetime

    @classmethod
    def create(cls, *, id: str, channel: str, target: str, event_types: Iterable[str],
               filter: Mapping[str, str | None] | None, created_at: datetime) -> "Subscription":
        """A new active subscription with a fresh signing secret; only supported channels."""
        if channel not in SUPPORTED_CHANNELS:
            raise UnsupportedChannel(channel)
        cleaned = {k: v for k, v in (filter or {}).items() if v is not None}
        return cls(id=id, channel=Channel(channel), target=target, event_types=list(dict.fromkeys(event_types)),
                   filter=cleaned or None, secret=new_secret(), active=True, created_at=created_at)

    def wants(self, event_type: str, data: Mapping[str, Any]) -> bool:
        return wants_type(self.event_types, event_type) and filter_matches(self.filter, data)


def new_secret() -> str:
    """A fresh Standard Webhooks signing secret: `whsec_` + base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def wants_type(event_types: Iterable[str], event_type: str) -> bool:
    """True if the list names the type, or holds "*" and the type is not one of notify's own."""
    event_types = set(event_types)
    if event_type in event_types:
        return True
    return WILDCARD in event_types and not event_type.startswith(OWN_EVENT_PREFIX)


def filter_matches(filter: Mapping[str, str] | None, data: Mapping[str, Any]) -> bool:
    """Every field the filter names must equal the event data's field of that name."""
    return all(data.get(name) == value for name, value in (filter or {}).items() if name in FILTER_FIELDS)


def classify(status_code: int | None) -> Outcome:
    """2xx delivered; 429, 5xx and no response at all (None: timeout, connection error) retry; the rest fail."""
    if status_code is None or status_code == 429 or status_code >= 500:
        return Outcome.RETRY
    if 200 <= status_code < 300:
        return Outcome.DELIVERED
    return Outcome.FAILED


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class Decision:
    """Where a delivery stands after an attempt."""

    status: DeliveryStatus
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded attempts, Retry-After honoured up to a cap."""

    base_seconds: float = 1.0
    max_seconds: float = 300.0
    max_attempts: int = 8
    retry_after_max_seconds: float = 3600.0

    def backoff(self, attempt: int, *, rand: Callable[[], float] = random.random) -> float:
        """Delay before the attempt after `attempt` (1-based): uniform in [0, min(max, base * 2^(attempt-1))]."""
        ceiling = min(self.max_seconds, self.base_seconds * 2.0 ** min(max(attempt - 1, 0), 64))
        return rand() * ceiling

    def decide(self, *, status_code: int | None, attempts: int, now: datetime, retry_after: float | None = None,
               rand: Callable[[], float] = random.random) -> Decision:
        """The delivery's next state after its `attempts`-th attempt got `status_code` (None: no response)."""
        outcome = classify(status_code)
        if outcome is Outcome.DELIVERED:
            return Decision(DeliveryStatus.DELIVERED, delivered_at=now)
        if outcome is Outcome.FAILED:
            return Decision(DeliveryStatus.FAILED)
        if attempts >= self.max_attempts:
            return Decision(DeliveryStatus.DEAD)
        if retry_after is not None:
            delay = min(retry_after, self.retry_after_max_seconds)
        else:
            delay = self.backoff(attempts, rand=rand)
        return Decision(DeliveryStatus.PENDING, next_attempt_at=now + timedelta(seconds=delay))
