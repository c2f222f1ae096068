from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vur.core.outbound import TargetRefused, parse_url

# What a workspace can subscribe to. "ping" is not among them: POST /{id}/test sends it
# to one webhook, whatever that webhook listens to.
EVENTS = ("training.completed", "training.failed")
PING = "ping"
Event = Literal["training.completed", "training.failed"]
DeliveryStatus = Literal["pending", "sending", "delivered", "failed"]

EXAMPLE_URL = "https://hooks.example.com/vur"


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_url(value)
    except TargetRefused as exc:
        raise ValueError(str(exc)) from exc
    return value


def _distinct(events: list[str] | None) -> list[str] | None:
    return None if events is None else list(dict.fromkeys(events))


class WebhookCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"url": EXAMPLE_URL, "events": ["training.completed", "training.failed"], "description": "Tell the plant dashboard"}]},
    )

    url: str = Field(max_length=2000, description="http:// or https://; private and loopback hosts are refused unless the instance allows them")
    events: list[Event] = Field(min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=2000)
    secret: str | None = Field(default=None, min_length=16, max_length=200, description="Signing secret; one is generated when absent. Shown only in this response")

    _url = field_validator("url")(_http_url)
    _events = field_validator("events")(_distinct)


class WebhookUpdate(BaseModel):
    """Only what is given changes. The secret cannot be read or changed: make a new webhook."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"events": ["training.failed"], "active": False}]})

    url: str | None = Field(default=None, max_length=2000)
    events: list[Event] | None = Field(default=None, min_length=1, max_length=50)
    active: bool | None = None
    description: str | None = Field(default=None, max_length=2000)

    _url = field_validator("url")(_http_url)
    _events = field_validator("events")(_distinct)


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    events: list[str]
    description: str | None
    active: bool
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(description="The signing secret: keep it now, it is never shown again")


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    started_at: datetime
    duration_ms: int
    status_code: int | None = Field(description="None when no answer came (timeout, refused connection, refused address)")
    error: str | None
    response_body: str | None = Field(description="The first 500 characters of the answer")


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    webhook_id: uuid.UUID
    event: str
    status: DeliveryStatus
    payload: dict[str, Any]
    next_attempt_at: datetime | None = Field(description="When the next attempt is due (pending) or the claim expires (sending)")
    delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime
    attempts: list[AttemptRead]
