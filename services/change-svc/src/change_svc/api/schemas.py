from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

ChangeTypeName = Literal["standard", "normal", "emergency"]
RiskName = Literal["low", "medium", "high"]
StatusName = Literal["requested"]


class ChangeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=500)
    description: str | None = Field(default=None, max_length=20000)
    type: ChangeTypeName
    service_id: str | None = Field(default=None, min_length=1, max_length=200)
    planned_start: AwareDatetime | None = None
    planned_end: AwareDatetime | None = None
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
