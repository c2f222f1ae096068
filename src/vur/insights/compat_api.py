"""Seed 003's paths at the root (/machines/, /train/, /ranking/, /webhook/treinamento/),
with its shapes and integer ids, so that its React frontend works unchanged. Thin: each
route calls the same service as the canonical API.

That frontend sends no token. A deployment that trusts its network may set
`VUR_MACHINE_PATHS_USER` to a user's email: these paths, called without a token, then
act as that user (in that user's workspace, with that user's role). Unset, they answer
401 without a token like every other route. A token, when sent, always wins.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from pydantic import ValidationError
from sqlalchemy import select

from vur.core.deps import AppSettings, DbSession, Store
from vur.identity.auth import Principal, oauth2_scheme, principal_from_token, principal_of
from vur.identity.exceptions import InvalidToken, ReadOnlyRole
from vur.identity.models import User
from vur.insights import service
from vur.insights.exceptions import IncompleteWebhook
from vur.insights.schemas import MachineCreate, SeedMachine, SeedMachineCreate, SeedWebhook
from vur.settings import Settings
from vur.webhooks import signing

router = APIRouter(tags=["machines (seed 003 paths)"])
upload_router = APIRouter(tags=["machines (seed 003 paths)"])

# The most machines the seed's unpaged list answers with.
LIST_LIMIT = 10_000


def open_paths_user(session: Any, settings: Settings) -> User | None:
    if not settings.machine_paths_user:
        return None
    user = session.scalar(select(User).where(User.email == settings.machine_paths_user.strip().lower()))
    if user is None or not user.is_active:
        raise InvalidToken("VUR_MACHINE_PATHS_USER names no active user of this installation")
    return user


def seed_principal(session: DbSession, settings: AppSettings, token: Annotated[str | None, Depends(oauth2_scheme)]) -> Principal:
    if token is None and (user := open_paths_user(session, settings)) is not None:
        return principal_of(user)
    return principal_from_token(session, settings, token)


async def seed_writer(principal: Annotated[Principal, Depends(seed_principal)]) -> Principal:
    if not principal.can_write:
        raise ReadOnlyRole()
    return principal


SeedReader = Annotated[Principal, Depends(seed_principal)]
SeedWriter = Annotated[Principal, Depends(seed_writer)]


@router.post("/machines/", response_model=SeedMachine, summary="Create Machine (seed 003)")
def create_machine(body: SeedMachineCreate, principal: SeedWriter, session: DbSession) -> dict[str, Any]:
    machine = service.create_machine(session, principal.workspace_id, principal.user_id, MachineCreate(machine_name=body.machine_name))
    return service.seed_machine(machine)


@router.get("/machines/", response_model=list[SeedMachine], summary="List Machines (seed 003)")
def list_machines(principal: SeedReader, session: DbSession) -> list[dict[str, Any]]:
    rows, _ = service.list_machines(session, principal.workspace_id, status=None, search=None, limit=LIST_LIMIT, offset=0)
    return [service.seed_machine(row) for row in rows]


@router.get("/machines/{machine_id}", response_model=SeedMachine, summary="Get Machine (seed 003's frontend reads it)")
def get_machine(machine_id: int, principal: SeedReader, session: DbSession) -> dict[str, Any]:
    return service.seed_machine(service.get_machine_by_number(session, machine_id, principal.workspace_id))


@router.delete("/machines/{machine_id}", summary="Delete Machine (seed 003): with its rankings, model and data")
def delete_machine(machine_id: int, principal: SeedWriter, session: DbSession, store: Store) -> dict[str, str]:
    service.delete_machine(session, store, service.get_machine_by_number(session, machine_id, principal.workspace_id, for_update=True))
    return {"status": "deleted"}


@upload_router.post("/train/", summary="Train Model (seed 003): the CSV is judged by its bytes, not its content type")
def train_model(
    machine_id: Annotated[int, Query()],
    target_column: Annotated[str, Query(min_length=1, max_length=300)],
    file: Annotated[UploadFile, File()],
    principal: SeedWriter,
    session: DbSession,
    store: Store,
    settings: AppSettings,
) -> dict[str, Any]:
    machine = service.get_machine_by_number(session, machine_id, principal.workspace_id, for_update=True)
    job, _, _, _ = service.start_training(
        session, store, settings, machine, principal.user_id, upload=file.file, filename=file.filename, target_column=target_column, features=None, algorithm="gradient_boosting"
    )
    return {"message": "Training started", "machine_id": machine.number, "job_id": str(job.id), "status": machine.status.value}


@router.get("/ranking/", summary="Get Ranking (seed 003): items by score_final, highest first, and the model's metrics")
def get_ranking(principal: SeedReader, session: DbSession, machine_id: Annotated[int, Query()]) -> dict[str, Any]:
    machine = service.get_machine_by_number(session, machine_id, principal.workspace_id)
    return service.seed_ranking(service.get_ranking(session, machine))


async def raw_body(request: Request) -> bytes:
    """The bytes as sent: the signature is over them, not over a re-encoding."""
    return await request.body()


@router.post(
    "/webhook/treinamento/",
    summary="Webhook Treinamento (seed 003): a training report {model_id, status, metrics}. Signed (X-VUR-Timestamp, X-VUR-Signature with VUR_MACHINE_WEBHOOK_SECRET) or sent with a token",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": SeedWebhook.model_json_schema(), "example": {"model_id": 1, "status": "completed", "metrics": {"r2": 0.91}}}}}},
)
def webhook_training(
    request: Request,
    body: Annotated[bytes, Depends(raw_body)],
    session: DbSession,
    settings: AppSettings,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> dict[str, Any]:
    secret = settings.machine_webhook_secret
    signed = bool(secret) and signing.verify(secret, request.headers.get("X-VUR-Timestamp"), request.headers.get("X-VUR-Signature"), body)
    if not signed and token is None:
        raise InvalidToken("Send a token, or sign the request (X-VUR-Timestamp, X-VUR-Signature)")
    principal = None if signed else principal_from_token(session, settings, token)
    if principal is not None and not principal.can_write:
        raise ReadOnlyRole()
    try:
        report = SeedWebhook.model_validate_json(body or b"null")
    except ValidationError as exc:  # malformed JSON is one too, with the parser's reason
        raise IncompleteWebhook("The body must be a JSON object {model_id, status, metrics}", {"body": exc.errors(include_url=False)[0]["msg"][:300]}) from exc
    workspace_id: uuid.UUID | None = principal.workspace_id if principal else None
    if workspace_id is None and (user := open_paths_user(session, settings)) is not None:
        workspace_id = user.workspace_id
    machine = service.apply_webhook(session, workspace_id, report.model_dump())
    shown_id = report.model_id if isinstance(report.model_id, int) else str(report.model_id)
    return {"message": "Status do modelo atualizado com sucesso", "model_id": shown_id, "status": machine.status.value}
