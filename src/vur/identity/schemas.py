from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

from vur.identity.models import Role

# A type, not a shared Field(): `Password | None = None` stays optional.
Password = Annotated[str, Field(min_length=8, max_length=128)]


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"email": "ana@example.com", "password": "s3cret-pass", "name": "Ana Lima", "workspace_name": "Demand planning"}]})

    email: EmailStr
    password: Password
    name: str = Field(min_length=1, max_length=200)
    workspace_name: str | None = Field(default=None, min_length=1, max_length=200)


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"email": "ana@example.com", "password": "s3cret-pass"}]})

    email: EmailStr
    password: str = Field(min_length=1, max_length=128)


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"refresh_token": "k7Vd3...opaque"}]})

    refresh_token: str = Field(min_length=10, max_length=200)


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "Ana M. Lima"}, {"current_password": "s3cret-pass", "new_password": "an0ther-pass"}]})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: EmailStr | None = None
    current_password: str | None = Field(default=None, max_length=128)
    new_password: Password | None = None

    @model_validator(mode="after")
    def _password_change_needs_current(self) -> ProfileUpdate:
        if (self.new_password is not None or self.email is not None) and not self.current_password:
            raise ValueError("current_password is required to change the email or the password")
        return self


class WorkspaceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    name: str
    role: Role
    is_superuser: bool
    workspace: WorkspaceRead
    created_at: datetime
    last_login_at: datetime | None


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    # The same access token under the name the VeloFlux frontend reads.
    token: str
    user: UserRead


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"email": "rui@example.com", "name": "Rui Costa", "password": "initial-pass", "role": "viewer"}]})

    email: EmailStr
    name: str = Field(min_length=1, max_length=200)
    password: Password
    role: Role = Role.member


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"role": "member"}, {"is_active": False}]})

    role: Role | None = None
    is_active: bool | None = None


class MemberRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    name: str
    role: Role
    is_active: bool
    created_at: datetime
