"""Who is calling: typed dependency aliases that routes declare, so no route parses a
token or checks a role by hand.

    def create_thing(principal: WorkspaceWriter, ...)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from vur.core import security
from vur.core.deps import AppSettings, DbSession
from vur.identity.exceptions import AdminRequired, InvalidToken, ReadOnlyRole
from vur.identity.models import Role, User
from vur.settings import Settings

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    workspace_id: uuid.UUID
    role: Role
    email: str
    is_superuser: bool

    @property
    def can_write(self) -> bool:
        return self.role in (Role.admin, Role.member)


def principal_from_token(session: Session, settings: Settings, token: str | None) -> Principal:
    """Also used by the WebSocket hub, which receives its token outside HTTP headers."""
    if not token:
        raise InvalidToken("Not authenticated")
    try:
        claims = security.decode_access_token(settings.resolved_secret_key(), token)
        user_id = uuid.UUID(claims["sub"])
    except (ValueError, KeyError) as exc:  # InvalidAccessToken is a ValueError
        raise InvalidToken() from exc
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise InvalidToken()
    return principal_of(user)


def principal_of(user: User) -> Principal:
    return Principal(user.id, user.workspace_id, user.role, user.email, user.is_superuser)


def current_principal(session: DbSession, settings: AppSettings, token: Annotated[str | None, Depends(oauth2_scheme)]) -> Principal:
    return principal_from_token(session, settings, token)


async def require_writer(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not principal.can_write:
        raise ReadOnlyRole()
    return principal


async def require_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.role != Role.admin:
        raise AdminRequired()
    return principal


WorkspaceReader = Annotated[Principal, Depends(current_principal)]
WorkspaceWriter = Annotated[Principal, Depends(require_writer)]
WorkspaceAdmin = Annotated[Principal, Depends(require_admin)]
