"""Business calendars: how much working time lies between two instants, and where N seconds end."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


class Calendar(Protocol):
    id: str

    def add(self, start: datetime, seconds: float) -> datetime:
        """The instant at which `seconds` of working time have passed since `start`."""

    def between(self, start: datetime, end: datetime) -> float:
        """Working seconds in [start, end); 0 if end is not after start."""


@dataclass(frozen=True)
class TwentyFourSeven:
    """Every second counts."""

    id: str = "24x7"

    def add(self, start: datetime, seconds: float) -> datetime:
        return start + timedelta(seconds=seconds)

    def between(self, start: datetime, end: datetime) -> float:
        return max(0.0, (end - start).total_seconds())


BUILT_IN: dict[str, Calendar] = {"24x7": TwentyFourSeven()}
