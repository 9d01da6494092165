"""Field types shared by the services' request schemas."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(minutes=5)


def _in_utc(value: datetime) -> datetime:
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range") from None
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"the time must lie between {EARLIEST:%Y} and {LATEST:%Y}")
    return value


def _not_in_future(value: datetime) -> datetime:
    if value > datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError("a time something happened cannot be in the future")
    return value


UtcTime = Annotated[AwareDatetime, AfterValidator(_in_utc)]
"""An RFC 3339 time with an offset, normalised to UTC, in a sane range."""

PastTime = Annotated[UtcTime, AfterValidator(_not_in_future)]
"""When something happened: a UtcTime no later than now (give or take clock skew)."""
