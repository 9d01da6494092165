from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from itsm_runtime.types import UtcTime

ChangeTypeName = Literal["standard", "normal", "emergency"]
RiskName = Literal["low", "medium", "high"]
StatusName = Literal["requested"]


class ChangeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=500)
    description: str | None = Field(default=None, max_length=20000)
    type: ChangeTypeName
    service_id: str | None = Field(default=None, min_length=1, max_length=200)
    planned_start: UtcTime | None = None
    planned_end: UtcTime | None = None
    risk: RiskName | None = None


class ChangeRead(BaseModel):
    id: str
    number: str
    title: str
    description: str | None
    type: ChangeTypeName
    service_id: str | None
    risk: RiskName
    status: StatusName
    planned_start: datetime | None
    planned_end: datetime | None
    created_at: datetime
    updated_at: datetime


class ChangePage(BaseModel):
    items: list[ChangeRead]
    next_cursor: str | None
