from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel, ConfigDict, Field, HttpUrl, TypeAdapter, ValidationError, ValidationInfo, field_validator,
)

ChannelName = Literal["webhook", "email", "chat"]
DeliveryStatusName = Literal["pending", "delivered", "failed", "dead"]
EventType = Annotated[str, Field(pattern=r"^(\*|itsm\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)$", max_length=200)]
OpaqueId = Annotated[str, Field(min_length=1, max_length=200)]

_http_url = TypeAdapter(HttpUrl)


class SubscriptionFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_id: OpaqueId | None = None
    customer_id: OpaqueId | None = None


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: ChannelName
    target: str = Field(min_length=1, max_length=2048, description="an http(s) URL for the webhook channel")
    event_types: list[EventType] = Field(min_length=1, max_length=100,
                                         description='event types such as "itsm.sla.breached", or "*" for all')
    filter: SubscriptionFilter | None = None

    @field_validator("target")
    @classmethod
    def _webhook_target_is_an_http_url(cls, target: str, info: ValidationInfo) -> str:
        if info.data.get("channel") != "webhook":
            return target
        try:
            return str(_http_url.validate_python(target))
        except ValidationError:
            raise ValueError("a webhook target must be an absolute http or https URL") from None


class SubscriptionRead(BaseModel):
    id: str
    channel: ChannelName
    target: str
    event_types: list[str]
    filter: SubscriptionFilter | None
    created_at: datetime


class SubscriptionSecretRead(SubscriptionRead):
    secret: str = Field(description="the Standard Webhooks signing secret (whsec_...), shown only once")


class SubscriptionPage(BaseModel):
    items: list[SubscriptionRead]
    next_cursor: str | None


class DeliveryRead(BaseModel):
    id: str
    subscription_id: str
    event_id: str
    event_type: str
    status: DeliveryStatusName
    attempts: int
    last_status_code: int | None
    delivered_at: datetime | None
    next_attempt_at: datetime | None
    created_at: datetime


class DeliveryAttemptRead(BaseModel):
    number: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryDetailRead(DeliveryRead):
    attempt_log: list[DeliveryAttemptRead]


class DeliveryPage(BaseModel):
    items: list[DeliveryRead]
    next_cursor: str | None
