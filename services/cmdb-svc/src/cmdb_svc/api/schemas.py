from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

CiTypeName = Literal["business_service", "application", "database", "server", "network", "cluster", "other"]
RelationshipTypeName = Literal["depends_on", "runs_on", "hosted_on", "member_of", "connects_to"]
LifecycleName = Literal["planned", "active", "maintenance", "retired"]
HealthName = Literal["up", "degraded", "down"]
# Ids and keys appear in paths and in lists: no whitespace, no slash.
CI_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"


class RedundancyCount(BaseModel):
    """Up while at least `min_up` members are up."""

    model_config = ConfigDict(extra="forbid")

    min_up: int = Field(ge=1)


class RedundancyPercent(BaseModel):
    """Up while at least `min_up_percent` of the members (rounded up) are up."""

    model_config = ConfigDict(extra="forbid")

    min_up_percent: float = Field(gt=0, le=100)


class CiCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, min_length=1, max_length=200, pattern=CI_ID_PATTERN, description=(
        "Caller-chosen id, e.g. the `service_id` a business service is known by across the platform; "
        "a UUID is assigned when omitted. A taken id is a 409."))
    name: str = Field(min_length=1, max_length=500)
    type: CiTypeName
    key: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^\S+$")
    criticality: int | None = Field(default=None, ge=1, le=5)
    owner: str | None = Field(default=None, min_length=1, max_length=200)
    status: LifecycleName = Field(default="active", description="Lifecycle status (not health).")
    attributes: dict[str, Any] = Field(default_factory=dict)
    redundancy: RedundancyCount | RedundancyPercent | None = None


class CiUpdate(BaseModel):
    """Fields to change; omitted fields stay. `attributes` is merged (an attribute set to null is removed)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=500)
    type: CiTypeName | None = None
    key: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^\S+$")
    criticality: int | None = Field(default=None, ge=1, le=5)
    owner: str | None = Field(default=None, min_length=1, max_length=200)
    status: LifecycleName | None = None
    attributes: dict[str, Any] | None = None
    redundancy: RedundancyCount | RedundancyPercent | None = None
    changed_by: str | None = Field(default=None, min_length=1, max_length=200,
                                   description="Who makes the change; defaults to the X-Actor header.")
    change_ref: str | None = Field(default=None, min_length=1, max_length=200,
                                   description="The change request this change belongs to, e.g. CHG0001234.")

    @model_validator(mode="after")
    def _required_fields_are_not_null(self):
        for name in ("name", "type", "status"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class CiRead(BaseModel):
    id: str
    name: str
    type: CiTypeName
    key: str | None
    criticality: int | None
    owner: str | None
    status: LifecycleName
    attributes: dict[str, Any]
    redundancy: RedundancyCount | RedundancyPercent | None
    version: int
    health: HealthName = Field(description="Current health from signals and the graph (up when never signalled).")
    health_since: datetime | None
    created_at: datetime
    updated_at: datetime


class CiPage(BaseModel):
    items: list[CiRead]
    next_cursor: str | None


class RelationshipCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_id: str = Field(min_length=1, max_length=200)
    target_id: str = Field(min_length=1, max_length=200)
    type: RelationshipTypeName


class RelationshipRead(BaseModel):
    id: str
    source_id: str
    target_id: str
    type: RelationshipTypeName
    created_at: datetime


class RelationshipPage(BaseModel):
    items: list[RelationshipRead]
    next_cursor: str | None


class FieldChangeRead(BaseModel):
    before: Any
    after: Any


class CiVersionRead(BaseModel):
    version: int
    changed_at: datetime
    changed_by: str | None
    change_ref: str | None
    changes: dict[str, FieldChangeRead]


class CiHistoryPage(BaseModel):
    items: list[CiVersionRead]
    next_cursor: str | None


class GraphCi(BaseModel):
    id: str
    name: str
    type: CiTypeName
    key: str | None
    health: HealthName
    distance: int


class GraphRelationship(BaseModel):
    source_id: str
    target_id: str
    type: RelationshipTypeName


class GraphRead(BaseModel):
    ci_id: str
    direction: Literal["upstream", "downstream"]
    depth: int
    cis: list[GraphCi]
    relationships: list[GraphRelationship]


class PathStep(BaseModel):
    ci_id: str
    name: str
    type: CiTypeName
    via: RelationshipTypeName | None = Field(
        description="Relationship through which the previous step needs this CI (null on the first step).")


class ImpactedService(BaseModel):
    service_id: str
    name: str
    status: Literal["degraded", "down"]
    path: list[PathStep] = Field(description="From the service down to the failed CI.")


class ImpactRead(BaseModel):
    ci_id: str
    baseline: Literal["all_up", "current"]
    services: list[ImpactedService]


class SignalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ci_id: str = Field(min_length=1, max_length=200)
    status: HealthName
    observed_at: AwareDatetime | None = Field(default=None, description="When observed; defaults to receipt time.")
    source: str | None = Field(default=None, max_length=200)


class SignalBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signals: list[SignalIn] = Field(min_length=1, max_length=10_000)


class SignalRead(BaseModel):
    ci_id: str
    status: HealthName
    observed_at: datetime


class StatusChangeRead(BaseModel):
    ci_id: str
    previous_status: HealthName
    status: HealthName
    observed_at: datetime
    cause_ci_ids: list[str]


class SignalsResult(BaseModel):
    received: int
    applied: int
    late: list[SignalRead] = Field(description="Observed before the newest signal of their CI: kept, not applied.")
    changes: list[StatusChangeRead]


class AvailabilityChange(BaseModel):
    previous_status: HealthName
    status: HealthName
    observed_at: datetime
    cause_ci_ids: list[str]


class AvailabilityRead(BaseModel):
    service_id: str
    name: str
    status: HealthName
    since: datetime | None
    cause_ci_ids: list[str]
    history: list[AvailabilityChange] = Field(description="Status changes, newest first.")
    next_cursor: str | None = Field(description="Cursor of the next (older) page of history.")


class RelationshipImport(BaseModel):
    """A relationship row of an import: each end by id or by key (of a CI in the import or in the CMDB)."""

    model_config = ConfigDict(extra="forbid")

    source_id: str | None = Field(default=None, min_length=1, max_length=200)
    source_key: str | None = Field(default=None, min_length=1, max_length=200)
    target_id: str | None = Field(default=None, min_length=1, max_length=200)
    target_key: str | None = Field(default=None, min_length=1, max_length=200)
    type: RelationshipTypeName

    @model_validator(mode="after")
    def _one_reference_per_end(self):
        for end in ("source", "target"):
            if (getattr(self, f"{end}_id") is None) == (getattr(self, f"{end}_key") is None):
                raise ValueError(f"give exactly one of {end}_id or {end}_key")
        return self


class ImportRowError(BaseModel):
    section: Literal["cis", "relationships"]
    row: int = Field(description="0-based index in its section (for CSV, the data row; the header is not counted).")
    field: str
    message: str


class ImportedRow(BaseModel):
    row: int
    id: str
    key: str | None = None


class ImportResult(BaseModel):
    cis: list[ImportedRow]
    relationships: list[ImportedRow]
