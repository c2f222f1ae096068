"""The ranking job: fit the machine's model on its uploaded data, rank the variables,
record the ranking as a new version of the machine's ranking model."""

from __future__ import annotations

import json
import pickle
import uuid
from typing import Any

from sqlalchemy.orm import Session

from vur.core.db import get_database, utcnow
from vur.core.storage import LocalArtifactStore
from vur.datasets.models import Dataset
from vur.datasets.service import load_frame
from vur.insights.models import Machine, MachineStatus, Ranking
from vur.insights.ranking import compute_ranking
from vur.insights.service import RANK_JOB
from vur.jobs.models import Job, JobStatus
from vur.jobs.registry import job
from vur.jobs.runner import JobContext
from vur.registry.models import ModelStatus, RegisteredModel
from vur.registry.service import record_version, status_after_training, version_folder
from vur.webhooks.service import emit

RANKING_FILE = "ranking.json"
ESTIMATOR_FILE = "estimator.pkl"


def _ended_without_ranking(session: Session, ended: Job) -> None:
    """Failed or cancelled: the machine says so (a cancelled retraining goes back to
    what it was), and a failure is reported to the workspace's webhooks."""
    machine = session.get(Machine, uuid.UUID(ended.payload["machine_id"]))
    if machine is None or machine.training_job_id != ended.id or machine.status != MachineStatus.training:
        return
    model = session.get(RegisteredModel, machine.model_id) if machine.model_id else None
    if model is not None and model.status == ModelStatus.training:
        model.status = status_after_training(model, None, ended.status)
    if ended.status == JobStatus.cancelled:
        machine.status = MachineStatus.completed if machine.trained_at else MachineStatus.created
        return
    machine.status, machine.error = MachineStatus.failed, ended.error
    payload = {"model_id": str(machine.model_id), "machine_id": str(machine.id), "machine_number": machine.number, "status": "failed", "metrics": {}, "error": ended.error}
    emit(session, machine.workspace_id, "training.failed", payload)


@job(RANK_JOB, retry_safe=True, max_attempts=2, on_unsuccessful=_ended_without_ranking)
def rank_machine(ctx: JobContext, machine_id: str, dataset_id: str, target_column: str, features: list[str], left_out: dict[str, str], algorithm: str) -> dict[str, Any]:
    database = get_database(ctx.settings.resolved_database_url)
    store = LocalArtifactStore(ctx.settings.artifacts_dir)
    with database.session() as session:
        machine = session.get(Machine, uuid.UUID(machine_id))
        dataset = session.get(Dataset, uuid.UUID(dataset_id))
        model = session.get(RegisteredModel, machine.model_id) if machine and machine.model_id else None
        if machine is None or dataset is None or model is None:
            raise LookupError("the machine, its model or its data no longer exists")
        folder = version_folder(model)
        frame = load_frame(store, dataset, [target_column, *features])
    result = compute_ranking(frame, target_column, features, algorithm, progress=ctx.progress)  # type: ignore[arg-type]
    trained_at = utcnow()
    metrics = {**result.metrics, "date": trained_at.isoformat()}
    try:
        document = {"ranking": result.ranking, "metrics": metrics, "partial_dependence": result.partial_dependence, "dropped": {**left_out, **result.dropped}, "features": result.features}
        store.write_bytes(f"{folder}/{RANKING_FILE}", json.dumps(document).encode())
        store.write_bytes(f"{folder}/{ESTIMATOR_FILE}", pickle.dumps({"estimator": result.estimator, "features": result.features}, protocol=pickle.HIGHEST_PROTOCOL))
        with database.session() as session:
            machine = session.get(Machine, uuid.UUID(machine_id), with_for_update=True)
            model = session.get(RegisteredModel, machine.model_id, with_for_update=True) if machine and machine.model_id else None
            if machine is None or model is None:
                raise LookupError("the machine was deleted while it trained")
            model.status, model.metrics, model.trained_at, model.algorithm = ModelStatus.trained, metrics, trained_at, algorithm
            model.hyperparameters = {"target_column": target_column, "features": result.features}
            version = record_version(session, model, folder, ctx.job_id, main_artifact=RANKING_FILE).number
            session.add(
                Ranking(
                    machine_id=machine.id,
                    workspace_id=machine.workspace_id,
                    version=version,
                    dataset_id=uuid.UUID(dataset_id),
                    job_id=ctx.job_id,
                    target_column=target_column,
                    algorithm=algorithm,
                    items=result.ranking,
                    metrics=metrics,
                    partial_dependence=result.partial_dependence,
                    dropped={**left_out, **result.dropped},
                    trained_at=trained_at,
                )
            )
            machine.status, machine.metrics, machine.trained_at, machine.error = MachineStatus.completed, metrics, trained_at, None
            payload = {"model_id": str(model.id), "machine_id": str(machine.id), "machine_number": machine.number, "status": "completed", "metrics": metrics}
            emit(session, machine.workspace_id, "training.completed", payload)
    except BaseException:
        store.delete_prefix(folder)  # a version that was not recorded leaves no files
        raise
    top = [item["variable"] for item in result.ranking[:5]]
    ctx.publish("training", "machine.ranking.completed", {"machine_id": machine_id, "version": version, "top": top, "metrics": metrics})
    return {"machine_id": machine_id, "version": version, "top": top, "metrics": metrics}
