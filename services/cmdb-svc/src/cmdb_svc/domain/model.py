"""Configuration items, their redundancy and the typed relationships between them."""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


class CiType(StrEnum):
    """What a CI is.

    A closed set rather than a free string: availability rules (a cluster is up while enough
    members are up, impact is reported on business services) depend on the type, and a typo
    such as `Server` or `db` would silently fall outside them. `other` is the escape hatch;
    finer classification belongs in `attributes`.
    """

    BUSINESS_SERVICE = "business_service"
    APPLICATION = "application"
    DATABASE = "database"
    SERVER = "server"
    NETWORK = "network"
    CLUSTER = "cluster"
    OTHER = "other"


class RelationshipType(StrEnum):
    """How a source CI relates to its target, read as `source <type> target`.

    depends_on: the source needs the target to work (application depends_on database).
    runs_on: software on the platform that executes it (application runs_on server).
    hosted_on: placed on a host or provider (server hosted_on a hypervisor cluster).
    member_of: one of the members of a cluster or pool, counted by its redundancy.
    connects_to: a network link; it implies no dependency.
    """

    DEPENDS_ON = "depends_on"
    RUNS_ON = "runs_on"
    HOSTED_ON = "hosted_on"
    MEMBER_OF = "member_of"
    CONNECTS_TO = "connects_to"


class LifecycleStatus(StrEnum):
    """Where a CI is in its life; unrelated to its health (up/degraded/down), which signals report."""

    PLANNED = "planned"
    ACTIVE = "active"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"


CRITICALITY_RANGE = range(1, 6)  # 1 = most critical, 5 = least, like incident priority


class InvalidCi(ValueError):
    """A CI breaks a rule; `field` names the offending input."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


class InvalidRelationship(ValueError):
    """A relationship breaks a rule; `field` names the offending input."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


class UnknownCi(LookupError):
    """A relationship names a CI the CMDB does not hold."""

    def __init__(self, ci_id: str, *, field: str):
        super().__init__(f"CI {ci_id} does not exist")
        self.ci_id = ci_id
        self.field = field


class IdTaken(Exception):
    """Another CI already has this id."""

    def __init__(self, ci_id: str):
        super().__init__(f"a CI with id {ci_id!r} already exists")
        self.ci_id = ci_id


class KeyTaken(Exception):
    """Another CI already has this key."""

    def __init__(self, key: str):
        super().__init__(f"a CI with key {key!r} already exists")
        self.key = key


class DuplicateRelationship(Exception):
    """The same (source, target, type) relationship already exists."""

    def __init__(self, source_id: str, target_id: str, type_: str):
        super().__init__(f"{source_id} {type_} {target_id} already exists")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Redundancy:
    """How many members must be up for the CI to be up: exactly one of `min_up` or `min_up_percent`."""

    min_up: int | None = None
    min_up_percent: float | None = None

    def __post_init__(self):
        if (self.min_up is None) == (self.min_up_percent is None):
            raise InvalidCi("redundancy takes exactly one of min_up or min_up_percent", field="redundancy")
        if self.min_up is not None and not (isinstance(self.min_up, int) and not isinstance(self.min_up, bool)
                                            and self.min_up >= 1):
            raise InvalidCi(f"min_up must be a whole number of at least 1, got {self.min_up!r}",
                            field="redundancy.min_up")
        if self.min_up_percent is not None and not (_is_number(self.min_up_percent)
                                                    and 0 < self.min_up_percent <= 100):
            raise InvalidCi(f"min_up_percent must be above 0 and at most 100, got {self.min_up_percent!r}",
                            field="redundancy.min_up_percent")

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> "Redundancy":
        """Parse `{"min_up": N}` or `{"min_up_percent": P}`; anything else is an InvalidCi."""
        unknown = set(value) - {"min_up", "min_up_percent"}
        if unknown:
            raise InvalidCi(f"unknown redundancy fields: {', '.join(sorted(unknown))}", field="redundancy")
        return cls(min_up=value.get("min_up"), min_up_percent=value.get("min_up_percent"))

    def as_dict(self) -> dict[str, int | float]:
        """The one field that is set, as the API and the database hold it."""
        if self.min_up is not None:
            return {"min_up": self.min_up}
        return {"min_up_percent": self.min_up_percent}

    def required_up(self, members: int) -> int:
        """Members that must be up out of `members`; a percentage rounds up, so 50% of 3 is 2."""
        if self.min_up is not None:
            return self.min_up
        return math.ceil(Decimal(str(self.min_up_percent)) * members / 100)


# Domain events: what happened, recorded on the aggregate, mapped to public events later.


@dataclass(frozen=True)
class CiAdded:
    at: datetime


@dataclass(frozen=True)
class RelationshipAdded:
    at: datetime


@dataclass(frozen=True)
class CiChanged:
    at: datetime
    version: int
    changes: dict[str, "FieldChange"]
    changed_by: str | None
    change_ref: str | None


@dataclass(frozen=True)
class FieldChange:
    before: Any
    after: Any


# Fields a change may touch, in the order a version lists them.
EDITABLE_FIELDS = ("name", "type", "key", "criticality", "owner", "status", "attributes", "redundancy")
# Fields whose change alters how health propagates through the graph.
TOPOLOGY_FIELDS = frozenset({"type", "redundancy"})


def _checked_name(name: str | None) -> str:
    if not name or not name.strip():
        raise InvalidCi("a CI needs a name", field="name")
    return name


def _checked_type(value: str) -> CiType:
    try:
        return CiType(value)
    except ValueError:
        raise InvalidCi(f"unknown CI type {value!r} (known: {', '.join(CiType)})", field="type") from None


def _checked_criticality(value: int | None) -> int | None:
    if value is not None and value not in CRITICALITY_RANGE:
        raise InvalidCi(f"criticality must be 1..5, got {value!r}", field="criticality")
    return value


def _checked_status(value: str) -> LifecycleStatus:
    try:
        return LifecycleStatus(value)
    except ValueError:
        raise InvalidCi(f"unknown lifecycle status {value!r} (known: {', '.join(LifecycleStatus)})",
                        field="status") from None


def _checked_redundancy(value: Redundancy | Mapping[str, Any] | None) -> Redundancy | None:
    return Redundancy.from_dict(value) if isinstance(value, Mapping) else value


def merge_attributes(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7396) of the attributes: a key set to null is removed."""
    merged = dict(current)
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


@dataclass
class Ci:
    id: str
    name: str
    type: CiType
    created_at: datetime
    updated_at: datetime
    key: str | None = None
    criticality: int | None = None
    owner: str | None = None
    status: LifecycleStatus = LifecycleStatus.ACTIVE
    attributes: dict[str, Any] = field(default_factory=dict)
    redundancy: Redundancy | None = None
    version: int = 1
    events: list = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def create(cls, *, id: str, name: str, type: str, created_at: datetime, key: str | None = None,
               criticality: int | None = None, owner: str | None = None, status: str = LifecycleStatus.ACTIVE,
               attributes: Mapping[str, Any] | None = None,
               redundancy: Redundancy | Mapping[str, Any] | None = None) -> "Ci":
        """A new CI, validated, recording that it was added."""
        ci = cls(id=id, name=_checked_name(name), type=_checked_type(type), key=key,
                 criticality=_checked_criticality(criticality), owner=owner, status=_checked_status(status),
                 attributes=dict(attributes or {}), redundancy=_checked_redundancy(redundancy),
                 created_at=created_at, updated_at=created_at)
        ci.events.append(CiAdded(at=created_at))
        return ci

    def field_values(self) -> dict[str, Any]:
        """The editable fields as plain JSON values, as a version records them."""
        return {"name": self.name, "type": str(self.type), "key": self.key, "criticality": self.criticality,
                "owner": self.owner, "status": str(self.status), "attributes": dict(self.attributes),
                "redundancy": self.redundancy.as_dict() if self.redundancy else None}

    def change(self, changes: Mapping[str, Any], *, at: datetime, changed_by: str | None = None,
               change_ref: str | None = None) -> dict[str, FieldChange]:
        """Apply the given field values; a real change bumps the version and records what changed.

        `attributes` is merged (a null value removes that attribute); every other field is replaced.
        Returns the fields that changed with their values before and after (empty when nothing did).
        """
        unknown = set(changes) - set(EDITABLE_FIELDS)
        if unknown:
            raise InvalidCi(f"cannot change {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
        if "name" in changes:
            _checked_name(changes["name"])
        if "type" in changes:
            _checked_type(changes["type"])
        if "criticality" in changes:
            _checked_criticality(changes["criticality"])
        if "status" in changes:
            _checked_status(changes["status"])
        redundancy = _checked_redundancy(changes.get("redundancy"))
        before = self.field_values()
        after = dict(before)
        for name, value in changes.items():
            if name == "attributes":
                after["attributes"] = merge_attributes(before["attributes"], value or {})
            elif name == "redundancy":
                after["redundancy"] = redundancy.as_dict() if redundancy else None
            else:
                after[name] = value
        diff = {name: FieldChange(before[name], after[name]) for name in EDITABLE_FIELDS
                if before[name] != after[name]}
        if not diff:
            return {}
        self.name, self.type, self.key = after["name"], CiType(after["type"]), after["key"]
        self.criticality, self.owner = after["criticality"], after["owner"]
        self.status, self.attributes = LifecycleStatus(after["status"]), after["attributes"]
        self.redundancy = Redundancy.from_dict(after["redundancy"]) if after["redundancy"] else None
        self.version += 1
        self.updated_at = at
        self.events.append(CiChanged(at=at, version=self.version, changes=diff, changed_by=changed_by,
                                     change_ref=change_ref))
        return diff


@dataclass
class Relationship:
    id: str
    source_id: str
    target_id: str
    type: RelationshipType
    created_at: datetime
    events: list = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def create(cls, *, id: str, source_id: str, target_id: str, type: str, created_at: datetime) -> "Relationship":
        """A new relationship `source <type> target`; a CI never relates to itself."""
        try:
            rel_type = RelationshipType(type)
        except ValueError:
            raise InvalidRelationship(f"unknown relationship type {type!r} (known: {', '.join(RelationshipType)})",
                                      field="type") from None
        if source_id == target_id:
            raise InvalidRelationship("a CI cannot relate to itself", field="target_id")
        relationship = cls(id=id, source_id=source_id, target_id=target_id, type=rel_type, created_at=created_at)
        relationship.events.append(RelationshipAdded(at=created_at))
        return relationship
