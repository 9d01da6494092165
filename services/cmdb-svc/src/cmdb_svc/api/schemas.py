from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CiTypeName = Literal["business_service", "application", "database", "server", "network", "cluster", "other"]
RelationshipTypeName = Literal["depends_on", "runs_on", "hosted_on", "member_of", "connects_to"]


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

    name: str = Field(min_length=1, max_length=500)
    type: CiTypeName
    key: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^\S+$")
    criticality: int | None = Field(default=None, ge=1, le=5)
    attributes: dict[str, Any] = Field(default_factory=dict)
    redundancy: RedundancyCount | RedundancyPercent | None = None


class CiRead(BaseModel):
    id: str
    name: str
    type: CiTypeName
    key: str | None
    criticality: int | None
    attributes: dict[str, Any]
    redundancy: RedundancyCount | RedundancyPercent | None
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
