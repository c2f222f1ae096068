from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from vur.core.db import Base, RecordMixin


class Role(enum.StrEnum):
    admin = "admin"
    member = "member"
    viewer = "viewer"


class Workspace(RecordMixin, Base):
    __tablename__ = "workspaces"

    name: Mapped[str] = mapped_column(String(200))


class User(RecordMixin, Base):
    __tablename__ = "users"

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16), default=Role.member)
    is_active: Mapped[bool] = mapped_column(default=True)
    is_superuser: Mapped[bool] = mapped_column(default=False)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)


class RefreshToken(RecordMixin, Base):
    """Opaque refresh tokens, stored as SHA-256. Each login starts a family; each refresh
    uses one token and issues the next. A token presented twice means it was stolen:
    the whole family is revoked."""

    __tablename__ = "refresh_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class LoginFailure(RecordMixin, Base):
    """One row per failed login; throttling counts recent rows per account and per client."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_email_created", "email", "created_at"), Index("ix_login_failures_client_created", "client", "created_at"))

    email: Mapped[str] = mapped_column(String(320))
    client: Mapped[str] = mapped_column(String(64))
