from __future__ import annotations

import uuid
from typing import Annotated

import pydantic_core
from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError

from vur.core.deps import AppDatabase, AppSettings, DbSession
from vur.core.errors import BadRequest, UnprocessableEntity, validation_details
from vur.identity import service
from vur.identity.auth import WorkspaceAdmin, WorkspaceReader
from vur.identity.exceptions import InvalidCredentials, InvalidToken
from vur.identity.models import User
from vur.identity.schemas import (
    LoginRequest,
    MemberCreate,
    MemberRead,
    MemberUpdate,
    ProfileUpdate,
    RefreshRequest,
    RegisterRequest,
    TokenResponse,
    UserRead,
)

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
members_router = APIRouter(prefix="/api/v1/workspace/members", tags=["auth"])

_LOGIN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": LoginRequest.model_json_schema(), "example": {"email": "ana@example.com", "password": "s3cret-pass"}},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {"username": {"type": "string", "description": "the account's email"}, "password": {"type": "string"}},
                }
            },
        },
    }
}


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def login_credentials(request: Request) -> LoginRequest:
    """JSON for API clients, the OAuth2 password form for Swagger's Authorize button."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        raw = {"email": form.get("username") or form.get("email"), "password": form.get("password")}
    else:
        try:
            raw = pydantic_core.from_json(await request.body())
        except ValueError as exc:  # bytes that are not UTF-8, or arrays nested past the parser's limit, too
            raise BadRequest("Malformed JSON body", {"body": str(exc)}) from exc
    try:
        return LoginRequest.model_validate(raw)
    except ValidationError as exc:
        raise UnprocessableEntity("Validation failed", validation_details(exc.errors())) from exc


@router.post("/register", response_model=TokenResponse, status_code=201, summary="Create an account and its workspace")
def register(body: RegisterRequest, session: DbSession, settings: AppSettings) -> TokenResponse:
    user = service.create_user(session, email=body.email, password=body.password, name=body.name, workspace_name=body.workspace_name)
    return service.issue_tokens(session, settings, user)


@router.post("/login", response_model=TokenResponse, summary="Exchange email and password for tokens", openapi_extra=_LOGIN_BODY)
def login(
    request: Request,
    credentials: Annotated[LoginRequest, Depends(login_credentials)],
    session: DbSession,
    settings: AppSettings,
    database: AppDatabase,
) -> TokenResponse:
    client = client_address(request)
    service.check_login_throttle(session, settings, credentials.email, client)
    try:
        user = service.authenticate(session, credentials.email, credentials.password)
    except InvalidCredentials:
        service.record_login_failure(database, credentials.email, client)
        raise
    return service.issue_tokens(session, settings, user)


@router.post("/refresh", response_model=TokenResponse, summary="Use a refresh token once for a new pair")
def refresh(body: RefreshRequest, session: DbSession, settings: AppSettings, database: AppDatabase) -> TokenResponse:
    tokens = service.rotate_refresh_token(session, settings, body.refresh_token)
    if tokens is None:
        # Replay of a used token: the revocation must survive the 401 that follows.
        session.commit()
        raise InvalidToken("Refresh token already used; every token of this session is now revoked")
    return tokens


@router.post("/logout", status_code=204, summary="Revoke a refresh token and its whole family")
def logout(body: RefreshRequest, session: DbSession) -> None:
    service.logout(session, body.refresh_token)


@router.get("/me", response_model=UserRead, summary="The calling user and workspace")
def me(principal: WorkspaceReader, session: DbSession) -> UserRead:
    user = session.get(User, principal.user_id)
    assert user is not None
    return service.user_read(session, user)


@router.put("/profile", response_model=UserRead, summary="Change name, email or password")
def update_profile(body: ProfileUpdate, principal: WorkspaceReader, session: DbSession) -> UserRead:
    user = session.get(User, principal.user_id)
    assert user is not None
    return service.user_read(session, service.update_profile(session, user, body))


@members_router.get("", response_model=list[MemberRead], summary="Members of the caller's workspace")
def list_members(principal: WorkspaceReader, session: DbSession) -> list[MemberRead]:
    return [MemberRead.model_validate(u) for u in service.list_members(session, principal.workspace_id)]


@members_router.post("", response_model=MemberRead, status_code=201, summary="Add an account to the workspace (admins)")
def add_member(body: MemberCreate, principal: WorkspaceAdmin, session: DbSession) -> MemberRead:
    return MemberRead.model_validate(service.add_member(session, principal.workspace_id, body))


@members_router.patch("/{user_id}", response_model=MemberRead, summary="Change a member's role or deactivate it (admins)")
def update_member(user_id: uuid.UUID, body: MemberUpdate, principal: WorkspaceAdmin, session: DbSession) -> MemberRead:
    return MemberRead.model_validate(service.update_member(session, principal.workspace_id, user_id, body))
