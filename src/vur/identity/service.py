"""Accounts, workspaces and tokens. No HTTP here: the router calls these."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from vur.core import security
from vur.core.db import Database, utcnow
from vur.core.errors import TooManyRequests
from vur.identity.exceptions import EmailTaken, InvalidCredentials, InvalidToken, LastAdmin, MemberNotFound
from vur.identity.models import LoginFailure, RefreshToken, Role, User, Workspace
from vur.identity.schemas import MemberCreate, MemberUpdate, ProfileUpdate, TokenResponse, UserRead, WorkspaceRead
from vur.settings import Settings


def normalize_email(email: str) -> str:
    return email.strip().lower()


def user_read(session: Session, user: User) -> UserRead:
    workspace = session.get(Workspace, user.workspace_id)
    assert workspace is not None
    return UserRead(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        is_superuser=user.is_superuser,
        workspace=WorkspaceRead.model_validate(workspace),
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    name: str,
    workspace_name: str | None = None,
    role: Role = Role.admin,
    is_superuser: bool = False,
) -> User:
    """A new account in a new workspace of its own, of which it is the admin."""
    email = normalize_email(email)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise EmailTaken()
    workspace = Workspace(name=workspace_name or f"{name}'s workspace")
    session.add(workspace)
    session.flush()
    user = User(
        workspace_id=workspace.id,
        email=email,
        name=name,
        password_hash=security.hash_password(password),
        role=role,
        is_superuser=is_superuser,
    )
    session.add(user)
    session.flush()
    return user


def issue_tokens(session: Session, settings: Settings, user: User, family_id: uuid.UUID | None = None) -> TokenResponse:
    access = security.create_access_token(
        settings.resolved_secret_key(),
        user.id,
        settings.access_token_minutes,
        {"ws": str(user.workspace_id), "role": user.role.value},
    )
    refresh = security.new_opaque_token()
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id or uuid.uuid4(),
            token_hash=security.hash_opaque_token(refresh),
            expires_at=utcnow() + timedelta(days=settings.refresh_token_days),
        )
    )
    session.flush()
    return TokenResponse(
        access_token=access,
        refresh_token=refresh,
        expires_in=settings.access_token_minutes * 60,
        token=access,
        user=user_read(session, user),
    )


def check_login_throttle(session: Session, settings: Settings, email: str, client: str) -> None:
    since = utcnow() - timedelta(seconds=settings.login_failure_window_seconds)
    by_account = session.scalar(select(func.count()).where(LoginFailure.email == normalize_email(email), LoginFailure.created_at >= since)) or 0
    by_client = session.scalar(select(func.count()).where(LoginFailure.client == client, LoginFailure.created_at >= since)) or 0
    if by_account >= settings.login_max_failures_per_account or by_client >= settings.login_max_failures_per_client:
        raise TooManyRequests("Too many failed logins; try again later", settings.login_failure_window_seconds)


def record_login_failure(database: Database, email: str, client: str) -> None:
    # Its own transaction: the request's transaction rolls back when login fails.
    with database.session() as session:
        session.add(LoginFailure(email=normalize_email(email)[:320], client=client[:64]))


def authenticate(session: Session, email: str, password: str) -> User:
    user = session.scalars(select(User).where(User.email == normalize_email(email))).first()
    # verify_password runs even without a user, so both paths cost the same time.
    valid = security.verify_password(user.password_hash if user else None, password)
    if user is None or not valid or not user.is_active:
        raise InvalidCredentials()
    if security.needs_rehash(user.password_hash):
        user.password_hash = security.hash_password(password)
    user.last_login_at = utcnow()
    session.flush()
    return user


def rotate_refresh_token(session: Session, settings: Settings, presented: str) -> TokenResponse | None:
    """Use a refresh token once and issue its successor in the same family.

    Returns None when the token was already used: the caller must commit the family's
    revocation and answer 401 (a replayed token means it leaked)."""
    row = session.scalars(
        select(RefreshToken).where(RefreshToken.token_hash == security.hash_opaque_token(presented)).with_for_update()
    ).first()
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise InvalidToken("Invalid or expired refresh token")
    if row.used_at is not None:
        revoke_family(session, row.family_id)
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise InvalidToken("Invalid or expired refresh token")
    # Claim the token with a guarded UPDATE, not `row.used_at = now`: on SQLite (where FOR
    # UPDATE is a no-op) two requests can both read it unused; only one may win the UPDATE.
    claimed = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None), RefreshToken.revoked_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        revoke_family(session, row.family_id)
        return None
    return issue_tokens(session, settings, user, family_id=row.family_id)


def revoke_family(session: Session, family_id: uuid.UUID) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def revoke_user_tokens(session: Session, user_id: uuid.UUID) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def logout(session: Session, presented: str) -> None:
    row = session.scalars(select(RefreshToken).where(RefreshToken.token_hash == security.hash_opaque_token(presented))).first()
    if row is None:
        raise InvalidToken("Invalid or expired refresh token")
    revoke_family(session, row.family_id)


def update_profile(session: Session, user: User, changes: ProfileUpdate) -> User:
    if changes.current_password is not None and not security.verify_password(user.password_hash, changes.current_password):
        raise InvalidCredentials()
    if changes.name is not None:
        user.name = changes.name
    if changes.email is not None:
        email = normalize_email(changes.email)
        if email != user.email and session.scalar(select(User.id).where(User.email == email)) is not None:
            raise EmailTaken()
        user.email = email
    if changes.new_password is not None:
        user.password_hash = security.hash_password(changes.new_password)
        revoke_user_tokens(session, user.id)
    session.flush()
    return user


def list_members(session: Session, workspace_id: uuid.UUID) -> list[User]:
    return list(session.scalars(select(User).where(User.workspace_id == workspace_id).order_by(User.created_at)).all())


def add_member(session: Session, workspace_id: uuid.UUID, body: MemberCreate) -> User:
    email = normalize_email(body.email)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise EmailTaken()
    user = User(workspace_id=workspace_id, email=email, name=body.name, password_hash=security.hash_password(body.password), role=body.role)
    session.add(user)
    session.flush()
    return user


def update_member(session: Session, workspace_id: uuid.UUID, user_id: uuid.UUID, changes: MemberUpdate) -> User:
    user = session.scalars(select(User).where(User.id == user_id, User.workspace_id == workspace_id).with_for_update()).first()
    if user is None:
        raise MemberNotFound.for_id("Member", user_id)
    # Only a change that takes away an *active* admin can leave the workspace without one:
    # demoting an already deactivated admin is fine.
    was_active_admin = user.role == Role.admin and user.is_active
    stays_active_admin = (changes.role or user.role) == Role.admin and (user.is_active if changes.is_active is None else changes.is_active)
    if was_active_admin and not stays_active_admin:
        admins = session.scalar(
            select(func.count()).where(User.workspace_id == workspace_id, User.role == Role.admin, User.is_active.is_(True))
        )
        if (admins or 0) <= 1:
            raise LastAdmin()
    if changes.role is not None:
        user.role = changes.role
    if changes.is_active is not None:
        user.is_active = changes.is_active
        if not changes.is_active:
            revoke_user_tokens(session, user.id)
    session.flush()
    return user
