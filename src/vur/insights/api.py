"""The canonical machines API under /api/v1/machines."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile

from vur.core.db import MAX_DB_INT
from vur.core.deps import AppSettings, DbSession, Store
from vur.core.pagination import PageParams, set_total
from vur.forecasting.plots import MEDIA_TYPES, PlotFormat
from vur.identity.auth import WorkspaceReader, WorkspaceWriter
from vur.insights import plots, service
from vur.insights.models import Machine, MachineStatus, Ranking
from vur.insights.ranking import Algorithm
from vur.insights.schemas import MachineCreate, MachineRead, MachineUpdate, RankingComparison, RankingRead, RankingSummary, TrainAccepted

router = APIRouter(prefix="/api/v1/machines", tags=["machines"])
upload_router = APIRouter(prefix="/api/v1/machines", tags=["machines"])

FeatureList = Annotated[
    str | None,
    Form(max_length=20_000, description="Comma-separated columns to consider (default: every numeric, boolean or categorical column but the target)"),
]


def ranking_read(machine: Machine, found: Ranking) -> RankingRead:
    return RankingRead(
        ranking_id=found.id,
        machine_id=machine.id,
        model_id=machine.model_id,
        version=found.version,
        algorithm=found.algorithm,  # type: ignore[arg-type]
        target_column=found.target_column,
        dataset_id=found.dataset_id,
        trained_at=found.trained_at,
        ranking=found.items,  # type: ignore[arg-type]
        metrics=found.metrics,
        partial_dependence=found.partial_dependence,  # type: ignore[arg-type]
        dropped=found.dropped,
    )


def machine_to_train(machine_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession) -> Machine:
    # A dependency, so that another workspace's id is a 404 before the form is validated.
    return service.get_machine(session, machine_id, principal.workspace_id, for_update=True)


def split_features(raw: str | None) -> list[str] | None:
    names = [name.strip() for name in (raw or "").split(",") if name.strip()]
    return names or None


@router.post("", response_model=MachineRead, status_code=201, summary="Register a machine (and its ranking model in the registry)")
def create_machine(body: MachineCreate, principal: WorkspaceWriter, session: DbSession) -> MachineRead:
    return MachineRead.model_validate(service.create_machine(session, principal.workspace_id, principal.user_id, body))


@router.get("", response_model=list[MachineRead], summary="Machines of the workspace, by number")
def list_machines(
    principal: WorkspaceReader,
    session: DbSession,
    response: Response,
    page: PageParams,
    status: MachineStatus | None = None,
    search: str | None = Query(default=None, max_length=200, description="Part of the name"),
) -> list[MachineRead]:
    rows, total = service.list_machines(session, principal.workspace_id, status=status, search=search, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return [MachineRead.model_validate(row) for row in rows]


@router.get("/{machine_id}", response_model=MachineRead, summary="One machine: status, latest metrics, ranking model")
def get_machine(machine_id: uuid.UUID, principal: WorkspaceReader, session: DbSession) -> MachineRead:
    return MachineRead.model_validate(service.get_machine(session, machine_id, principal.workspace_id))


@router.put("/{machine_id}", response_model=MachineRead, summary="Rename a machine or change its description and tags (only the fields given)")
def update_machine(machine_id: uuid.UUID, body: MachineUpdate, principal: WorkspaceWriter, session: DbSession) -> MachineRead:
    machine = service.get_machine(session, machine_id, principal.workspace_id, for_update=True)
    return MachineRead.model_validate(service.update_machine(session, machine, body))


@router.delete("/{machine_id}", status_code=204, summary="Delete a machine with its rankings, ranking model and training data (a training in progress is cancelled)")
def delete_machine(machine_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession, store: Store) -> None:
    service.delete_machine(session, store, service.get_machine(session, machine_id, principal.workspace_id, for_update=True))


@upload_router.post(
    "/{machine_id}/train",
    response_model=TrainAccepted,
    status_code=202,
    summary="Upload process data (CSV, TSV, Excel or Parquet, recognised from the bytes) and rank the variables that drive the target, as a job",
)
def train_machine(
    machine: Annotated[Machine, Depends(machine_to_train)],
    principal: WorkspaceWriter,
    session: DbSession,
    store: Store,
    settings: AppSettings,
    file: Annotated[UploadFile, File(description="The process data, one row per observation")],
    target_column: Annotated[str, Form(min_length=1, max_length=300)],
    features: FeatureList = None,
    algorithm: Annotated[Algorithm, Form(description="gradient_boosting (LightGBM, default), random_forest or linear (ridge)")] = "gradient_boosting",
) -> TrainAccepted:
    job, dataset, chosen, left_out = service.start_training(
        session, store, settings, machine, principal.user_id, upload=file.file, filename=file.filename, target_column=target_column, features=split_features(features), algorithm=algorithm
    )
    return TrainAccepted(machine_id=machine.id, job_id=job.id, dataset_id=dataset.id, status=machine.status, features=chosen, left_out=left_out)


@router.get("/{machine_id}/ranking", response_model=RankingRead, summary="The variables that drive the target, most important first, with partial-dependence curves of the top ones")
def get_ranking(machine_id: uuid.UUID, principal: WorkspaceReader, session: DbSession, version: int | None = Query(default=None, ge=1, le=MAX_DB_INT, description="Default: the latest")) -> RankingRead:
    machine = service.get_machine(session, machine_id, principal.workspace_id)
    return ranking_read(machine, service.get_ranking(session, machine, version))


@router.get("/{machine_id}/rankings", response_model=list[RankingSummary], summary="Every ranking of the machine, newest first (its training history)")
def list_rankings(machine_id: uuid.UUID, principal: WorkspaceReader, session: DbSession, response: Response, page: PageParams) -> list[RankingSummary]:
    machine = service.get_machine(session, machine_id, principal.workspace_id)
    rows, total = service.list_rankings(session, machine, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return [
        RankingSummary(
            ranking_id=row.id,
            version=row.version,
            algorithm=row.algorithm,  # type: ignore[arg-type]
            target_column=row.target_column,
            trained_at=row.trained_at,
            metrics=row.metrics,
            top=[item["variable"] for item in row.items[: service.TOP]],
        )
        for row in rows
    ]


@router.get("/{machine_id}/ranking/compare", response_model=RankingComparison, summary="Which variables moved between two rankings (default: the latest and the one before)")
def compare_rankings(
    machine_id: uuid.UUID,
    principal: WorkspaceReader,
    session: DbSession,
    version: int | None = Query(default=None, ge=1, le=MAX_DB_INT, description="Default: the latest"),
    against: int | None = Query(default=None, ge=1, le=MAX_DB_INT, description="Default: the version before `version`"),
) -> RankingComparison:
    return service.compare(session, service.get_machine(session, machine_id, principal.workspace_id), version, against)


@router.get(
    "/{machine_id}/ranking/plot",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}, "description": "The chart"}},
    summary="The ranking as a bar chart (importance with its spread, coloured by direction)",
)
def plot_ranking(
    machine_id: uuid.UUID,
    principal: WorkspaceReader,
    session: DbSession,
    format: PlotFormat = "png",
    top: int = Query(default=20, ge=1, le=100),
    version: int | None = Query(default=None, ge=1, le=MAX_DB_INT),
) -> Response:
    machine = service.get_machine(session, machine_id, principal.workspace_id)
    found = service.get_ranking(session, machine, version)
    title = f"{machine.name}: what drives {found.target_column} (version {found.version})"
    return Response(plots.ranking_chart(found.items, title, format, top), media_type=MEDIA_TYPES[format], headers={"Cache-Control": "private, max-age=60"})
