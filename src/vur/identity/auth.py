"""Who is calling: typed dependency aliases that routes declare, so no route parses a
token or checks a role by hand.

    def create_thing(principal: WorkspaceWriter, ...)
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import event
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from vur.core import security
from vur.core.db import Database, on_commit
from vur.core.recent import Recent
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
    user_id, _ = _token_claims(settings, token)
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise InvalidToken()
    return principal_of(user)


def _token_claims(settings: Settings, token: str | None) -> tuple[uuid.UUID, float]:
    """The token's user and expiry time (epoch seconds); 401 for anything but a valid access token."""
    if not token:
        raise InvalidToken("Not authenticated")
    try:
        claims = security.decode_access_token(settings.resolved_secret_key(), token)
        return uuid.UUID(claims["sub"]), float(claims["exp"])
    except (ValueError, KeyError) as exc:  # InvalidAccessToken is a ValueError
        raise InvalidToken() from exc


def principal_of(user: User) -> Principal:
    return Principal(user.id, user.workspace_id, user.role, user.email, user.is_superuser)


# The principal of each token in use, kept a second (never past the token's expiry; see
# `vur.core.recent`): most requests then need no signature check, no users lookup and no
# thread for one. A change to a user committed in this process forgets them; one committed
# by another process (a second server worker, the CLI) is seen within PRINCIPAL_SECONDS.
PRINCIPAL_SECONDS = 1.0
_principals: Recent[str, Principal] = Recent(PRINCIPAL_SECONDS)


def _active_principal(database: Database, user_id: uuid.UUID) -> Principal | None:
    with database.session() as session:
        user = session.get(User, user_id)
        return principal_of(user) if user is not None and user.is_active else None


@event.listens_for(Session, "after_flush")
def _forget_principals_of_changed_users(session: Session, _context: Any) -> None:
    if any(isinstance(o, User) for o in (*session.dirty, *session.deleted)):
        on_commit(session, _principals.forget)


async def current_principal(request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]) -> Principal:
    # The app's database and settings are read off the request rather than declared as
    # dependencies: FastAPI's solving of each costs every request more than its work.
    state = request.app.state
    principal = await _principal_of_token(state.database, state.settings, token)
    # The request's log records name its workspace: /monitoring/logs shows a workspace its own.
    structlog.contextvars.bind_contextvars(workspace_id=str(principal.workspace_id))
    return principal


async def _principal_of_token(database: Database, settings: Settings, token: str | None) -> Principal:
    if not token:
        raise InvalidToken("Not authenticated")
    if (cached := _principals.get(token)) is not None:
        return cached
    mark = _principals.mark()
    user_id, expires = _token_claims(settings, token)
    principal = await run_in_threadpool(_active_principal, database, user_id)
    if principal is None:
        raise InvalidToken()
    _principals.keep(token, principal, mark, until=mark.at + expires - time.time())  # the token's expiry, on the monotonic clock
    return principal


# The roles' checks take the request and token themselves, not the principal as a
# dependency of theirs: one dependency fewer for each request to solve.
async def require_writer(request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]) -> Principal:
    principal = await current_principal(request, token)
    if not principal.can_write:
        raise ReadOnlyRole()
    return principal


async def require_admin(request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]) -> Principal:
    principal = await current_principal(request, token)
    if principal.role != Role.admin:
        raise AdminRequired()
    return principal


WorkspaceReader = Annotated[Principal, Depends(current_principal)]
WorkspaceWriter = Annotated[Principal, Depends(require_writer)]
WorkspaceAdmin = Annotated[Principal, Depends(require_admin)]
