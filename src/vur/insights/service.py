"""Machines: registration, training on uploaded process data, rankings and their
history. Both the canonical API and seed 003's paths call these functions."""

from __future__ import annotations

import uuid
from typing import Any, BinaryIO

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vur.core.db import MAX_DB_INT
from vur.core.repository import contains, get_scoped, paginate
from vur.core.storage import ArtifactStore
from vur.datasets import service as datasets
from vur.datasets.models import Dataset
from vur.insights import ranking
from vur.insights.exceptions import IncompleteWebhook, InvalidTrainingData, MachineBusy, MachineNotFound, RankingNotFound
from vur.insights.models import Machine, MachineCounter, MachineStatus, Ranking
from vur.insights.schemas import MachineCreate, MachineUpdate, RankingComparison, VariableMove
from vur.jobs import service as jobs
from vur.jobs.models import Job, JobStatus
from vur.registry import service as registry
from vur.registry.models import ModelStatus, RegisteredModel
from vur.settings import Settings

RANK_JOB = "insights.rank"
TOP = 5
# A name no uploaded column can have (NUL is not allowed in headers).
ROWS_WITH_TARGET = "\0rows with a target"


# --- machines -----------------------------------------------------------------------


def create_machine(session: Session, workspace_id: uuid.UUID, user_id: uuid.UUID, body: MachineCreate) -> Machine:
    """The machine, with the workspace's next number, and its ranking model in the registry."""
    model = RegisteredModel(workspace_id=workspace_id, created_by=user_id, kind="ranking", name=body.machine_name, algorithm="gradient_boosting", status=ModelStatus.configured)
    session.add(model)
    session.flush()
    machine = Machine(workspace_id=workspace_id, created_by=user_id, number=_next_number(session, workspace_id), name=body.machine_name, description=body.description, tags=body.tags, model_id=model.id)
    session.add(machine)
    session.flush()
    model.config = {"machine_id": str(machine.id)}
    return machine


def _next_number(session: Session, workspace_id: uuid.UUID) -> int:
    # The counter row is locked until the request commits: creations take turns.
    counter = session.get(MachineCounter, workspace_id, with_for_update=True)
    if counter is None:
        try:
            with session.begin_nested():  # the workspace's first machine; a racing first one wins
                counter = MachineCounter(workspace_id=workspace_id, last_number=0)
                session.add(counter)
        except IntegrityError:
            counter = session.get(MachineCounter, workspace_id, with_for_update=True, populate_existing=True)
            assert counter is not None
    counter.last_number += 1
    session.flush()
    return counter.last_number


def get_machine(session: Session, machine_id: uuid.UUID, workspace_id: uuid.UUID, *, for_update: bool = False) -> Machine:
    return get_scoped(session, Machine, machine_id, workspace_id, MachineNotFound, for_update=for_update)


def get_machine_by_number(session: Session, number: int, workspace_id: uuid.UUID, *, for_update: bool = False) -> Machine:
    # Numbers are positive and stored as INTEGER: one past that is no machine (the driver would refuse to compare it).
    stmt = select(Machine).where(Machine.workspace_id == workspace_id, Machine.number == number)
    machine = session.scalar(stmt.with_for_update() if for_update else stmt) if 1 <= number <= MAX_DB_INT else None
    if machine is None:
        raise MachineNotFound(f"Machine {number} not found")
    return machine


def list_machines(session: Session, workspace_id: uuid.UUID, *, status: MachineStatus | None, search: str | None, limit: int, offset: int) -> tuple[list[Machine], int]:
    stmt = select(Machine).where(Machine.workspace_id == workspace_id)
    if status is not None:
        stmt = stmt.where(Machine.status == status)
    if search:
        stmt = stmt.where(contains(Machine.name, search))
    return paginate(session, stmt.order_by(Machine.number), limit=limit, offset=offset)


def update_machine(session: Session, machine: Machine, body: MachineUpdate) -> Machine:
    changes = body.model_dump(exclude_unset=True)
    for field, value in changes.items():
        if value is None and field != "description":
            continue
        setattr(machine, "name" if field == "machine_name" else field, value)
    if "machine_name" in changes and changes["machine_name"] and machine.model_id:
        model = session.get(RegisteredModel, machine.model_id)
        if model is not None:
            model.name = machine.name
    session.flush()
    return machine


def delete_machine(session: Session, store: ArtifactStore, machine: Machine) -> None:
    """The machine, its rankings, its ranking model with every version's files, and the
    datasets its trainings stored. A training in progress is cancelled first."""
    job = session.get(Job, machine.training_job_id, with_for_update=True) if machine.training_job_id else None
    if job is not None and job.status in (JobStatus.queued, JobStatus.running):
        jobs.request_cancel(session, job)
    dataset_ids = set(session.scalars(select(Ranking.dataset_id).where(Ranking.machine_id == machine.id, Ranking.dataset_id.is_not(None))))
    model = session.get(RegisteredModel, machine.model_id) if machine.model_id else None
    if job is not None and job.payload.get("dataset_id"):
        dataset_ids.add(uuid.UUID(job.payload["dataset_id"]))
    session.execute(delete(Ranking).where(Ranking.machine_id == machine.id))
    session.delete(machine)
    session.flush()
    if model is not None:
        model.status = ModelStatus.failed  # no longer training: its job is cancelled
        registry.delete_model(session, store, model)
    for dataset_id in dataset_ids:
        dataset = session.get(Dataset, dataset_id)
        if dataset is not None:
            datasets.delete_dataset(session, store, dataset, force=True)


# --- training -----------------------------------------------------------------------


def start_training(
    session: Session,
    store: ArtifactStore,
    settings: Settings,
    machine: Machine,
    user_id: uuid.UUID,
    *,
    upload: BinaryIO,
    filename: str | None,
    target_column: str,
    features: list[str] | None,
    algorithm: ranking.Algorithm,
) -> tuple[Job, Dataset, list[str], dict[str, str]]:
    """Store the upload as a dataset, check that it can be ranked, queue the job. Any
    refusal rolls the dataset back with its files."""
    if machine.status == MachineStatus.training:
        raise MachineBusy(f"Machine {machine.number} is already training", {"job_id": str(machine.training_job_id)})
    dataset = datasets.create_from_upload(
        session,
        store,
        workspace_id=machine.workspace_id,
        user_id=user_id,
        handle=upload,
        filename=filename,
        name=f"{machine.name}: process data"[:200],
        description=f"Uploaded to train machine {machine.number} ({machine.name}), target '{target_column}'",
        max_bytes=settings.max_upload_bytes,
    )
    chosen, left_out = check_training_data(store, dataset, target_column, features)
    dataset.config = {**dataset.config, "target_column": target_column, "feature_columns": chosen}
    payload = {"machine_id": str(machine.id), "dataset_id": str(dataset.id), "target_column": target_column, "features": chosen, "left_out": left_out, "algorithm": algorithm}
    job = jobs.enqueue(session, RANK_JOB, payload, workspace_id=machine.workspace_id, created_by=user_id)
    machine.status, machine.training_job_id, machine.error = MachineStatus.training, job.id, None
    model = session.get(RegisteredModel, machine.model_id) if machine.model_id else None
    if model is not None:
        model.status, model.algorithm, model.dataset_id, model.training_job_id = ModelStatus.training, algorithm, dataset.id, job.id
    session.flush()
    return job, dataset, chosen, left_out


def check_training_data(store: ArtifactStore, dataset: Dataset, target: str, features: list[str] | None) -> tuple[list[str], dict[str, str]]:
    """The variables to rank, or a 422 that says what is wrong with the file: the target
    missing or not numeric, too few rows with a target, nothing that varies."""
    import polars as pl

    types = dataset.detected_types
    if target not in types:
        shown = ", ".join(list(types)[:30])
        raise InvalidTrainingData(f"The file has no column '{target}'", {"target_column": f"not a column of the file; its columns are: {shown}"})
    if types[target] not in ("numeric", "boolean"):
        raise InvalidTrainingData(f"The target '{target}' must be numeric; it is {types[target]}", {"target_column": f"{types[target]} column"})
    try:
        chosen, left_out = ranking.usable_features(types, target, features)
    except ranking.RankingInputError as exc:
        raise InvalidTrainingData(str(exc), exc.problems) from exc
    if not chosen:
        raise InvalidTrainingData("No column of the file can explain the target", {"features": f"no numeric, boolean or categorical column besides the target; left out: {left_out}"})
    counts = (
        datasets.scan_parquet(store, dataset.parquet_key)
        .select(
            pl.col(target).cast(pl.Float64, strict=False).is_finite().sum().alias(ROWS_WITH_TARGET),
            *[pl.col(name).drop_nulls().n_unique().alias(name) for name in chosen],
        )
        .collect()
        .row(0, named=True)
    )
    if (rows := counts[ROWS_WITH_TARGET]) < ranking.MIN_ROWS:
        raise InvalidTrainingData(f"Only {rows} rows have a target value; at least {ranking.MIN_ROWS} are needed", {"rows": f"{rows} < {ranking.MIN_ROWS}"})
    if all(counts[name] <= 1 for name in chosen):
        raise InvalidTrainingData("Every feature is constant: nothing can explain the target", {"features": f"constant or empty: {chosen[:30]}"})
    return chosen, left_out


# --- rankings -----------------------------------------------------------------------


def get_ranking(session: Session, machine: Machine, version: int | None = None) -> Ranking:
    """Version `version` of the machine's ranking, or its latest."""
    stmt = select(Ranking).where(Ranking.machine_id == machine.id)
    stmt = stmt.where(Ranking.version == version) if version is not None else stmt.order_by(Ranking.version.desc()).limit(1)
    found = session.scalar(stmt)
    if found is None:
        detail = "train the machine first" if version is None else "no such version"
        raise RankingNotFound(f"Machine {machine.number} has no ranking{'' if version is None else f' version {version}'}", {"ranking": detail, "status": machine.status.value})
    return found


def list_rankings(session: Session, machine: Machine, *, limit: int, offset: int) -> tuple[list[Ranking], int]:
    return paginate(session, select(Ranking).where(Ranking.machine_id == machine.id).order_by(Ranking.version.desc()), limit=limit, offset=offset)


def compare(session: Session, machine: Machine, version: int | None, against: int | None) -> RankingComparison:
    """How the variables moved between two rankings: by default the latest and the one
    before it."""
    current = get_ranking(session, machine, version)
    if against is None:
        earlier = session.scalar(select(Ranking).where(Ranking.machine_id == machine.id, Ranking.version < current.version).order_by(Ranking.version.desc()).limit(1))
        if earlier is None:
            raise RankingNotFound(f"Machine {machine.number} has no ranking before version {current.version} to compare with", {"against": "train the machine again first"})
    else:
        earlier = get_ranking(session, machine, against)
    before = {item["variable"]: item for item in earlier.items}
    now = {item["variable"]: item for item in current.items}
    moves = []
    for name in [*now, *(name for name in before if name not in now)]:
        new, old = now.get(name), before.get(name)
        moves.append(
            VariableMove(
                variable=name,
                rank=new["rank"] if new else None,
                previous_rank=old["rank"] if old else None,
                rank_change=old["rank"] - new["rank"] if new and old else None,
                importance=new["importance"] if new else None,
                previous_importance=old["importance"] if old else None,
                importance_change=new["importance"] - old["importance"] if new and old else None,
                direction=new["direction"] if new else None,
                previous_direction=old["direction"] if old else None,
                direction_changed=bool(new and old and new["direction"] != old["direction"]),
            )
        )
    top_now, top_before = [i["variable"] for i in current.items[:TOP]], [i["variable"] for i in earlier.items[:TOP]]
    return RankingComparison(
        machine_id=machine.id,
        version=current.version,
        previous_version=earlier.version,
        variables=moves,
        entered_top=[name for name in top_now if name not in top_before],
        left_top=[name for name in top_before if name not in top_now],
        metrics_change={name: current.metrics[name] - earlier.metrics[name] for name in ("r2", "rmse", "mae") if name in current.metrics and name in earlier.metrics},
    )


# --- seed 003 -----------------------------------------------------------------------

def seed_machine(machine: Machine) -> dict[str, Any]:
    return {"machine_name": machine.name, "id": machine.number, "status": machine.status.value, "model_id": machine.number}


def seed_ranking(found: Ranking) -> dict[str, Any]:
    """Seed 003's /ranking/ answer: `feature` and `score_final` (sorted, highest first)
    beside the canonical item, which already carries the SHAP and native figures its
    frontend reads; the metrics already have its names (r2, mae, rmse, n_*, date)."""
    items = [{"feature": item["variable"], "score_final": item["importance"], **item} for item in found.items]
    items.sort(key=lambda item: item["score_final"], reverse=True)
    return {"ranking": items, "metrics": found.metrics}


def apply_webhook(session: Session, workspace_id: uuid.UUID | None, body: dict[str, Any]) -> Machine:
    """Seed 003's incoming training report: set the machine's status (and metrics). An
    integer model_id is the machine's number in `workspace_id`; a UUID, its ranking model
    in the registry."""
    model_id, status, metrics = body.get("model_id"), body.get("status"), body.get("metrics")
    if missing := {name: "required" for name, value in (("model_id", model_id), ("status", status)) if not value}:
        raise IncompleteWebhook("Incomplete webhook: model_id and status are required", missing)
    if status not in MachineStatus.__members__:
        raise IncompleteWebhook(f"Unknown status '{status}'", {"status": f"one of {list(MachineStatus.__members__)}"})
    if isinstance(model_id, int):
        if workspace_id is None:
            raise MachineNotFound(f"Machine {model_id} not found")
        machine = get_machine_by_number(session, model_id, workspace_id, for_update=True)
    else:
        stmt = select(Machine).where(Machine.model_id == uuid.UUID(str(model_id)))
        machine = session.scalar((stmt.where(Machine.workspace_id == workspace_id) if workspace_id else stmt).with_for_update())
        if machine is None:
            raise MachineNotFound(f"No machine has the model '{model_id}'")
    machine.status = MachineStatus(status)
    if metrics:
        machine.metrics = metrics
    session.flush()
    return machine
