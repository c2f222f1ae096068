from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from vur.core.db import on_commit, on_rollback, utcnow
from vur.core.repository import get_scoped, paginate
from vur.core.storage import ArtifactStore
from vur.jobs.models import JobStatus
from vur.registry import bundles
from vur.registry.exceptions import IllegalStatusChange, ModelBusy, ModelNotFound, VersionNotFound
from vur.registry.models import LlmModel, ModelStatus, ModelVersion, RegisteredModel
from vur.registry.schemas import LlmModelCreate, LlmModelRead, ModelRead


def get_model(session: Session, model_id: uuid.UUID, workspace_id: uuid.UUID, *, for_update: bool = False) -> RegisteredModel:
    return get_scoped(session, RegisteredModel, model_id, workspace_id, ModelNotFound, for_update=for_update)


def list_models(
    session: Session,
    workspace_id: uuid.UUID,
    *,
    kind: str | None,
    limit: int,
    offset: int,
    provider: str | None = None,
    domain_id: uuid.UUID | None = None,
) -> tuple[list[RegisteredModel], int]:
    """`provider` and `domain_id` are LLM fields: given, only LLMs can match."""
    stmt = select(RegisteredModel).where(RegisteredModel.workspace_id == workspace_id)
    if kind is not None:
        stmt = stmt.where(RegisteredModel.kind == kind)
    if provider is not None or domain_id is not None:
        stmt = stmt.join(LlmModel, LlmModel.model_id == RegisteredModel.id)
        stmt = stmt.where(LlmModel.provider == provider) if provider is not None else stmt
        stmt = stmt.where(LlmModel.domain_id == domain_id) if domain_id is not None else stmt
    return paginate(session, stmt.order_by(RegisteredModel.created_at.desc()), limit=limit, offset=offset)


def register_llm(session: Session, workspace_id: uuid.UUID, user_id: uuid.UUID, body: LlmModelCreate) -> RegisteredModel:
    """A `models` row of kind "llm" (algorithm "llm") with its LLM fields beside it."""
    model = RegisteredModel(
        workspace_id=workspace_id,
        created_by=user_id,
        kind="llm",
        name=body.name,
        algorithm="llm",
        hyperparameters={},
        config=body.config,
        status=ModelStatus.registered,
        metrics={},
    )
    session.add(model)
    session.flush()
    fields = body.model_dump(include={"domain_id", "base_model", "provider", "model_family", "version", "capabilities"})
    session.add(LlmModel(model_id=model.id, workspace_id=workspace_id, **fields))
    session.flush()
    return model


def read_models(session: Session, models: list[RegisteredModel]) -> list[ModelRead | LlmModelRead]:
    """Each model in its kind's shape: LLMs as seed 004 shows them, the others as ModelRead."""
    llm_ids = [m.id for m in models if m.kind == "llm"]
    details = {d.model_id: d for d in session.scalars(select(LlmModel).where(LlmModel.model_id.in_(llm_ids)))} if llm_ids else {}
    return [_read(model, details.get(model.id)) for model in models]


def read_model(session: Session, model: RegisteredModel) -> ModelRead | LlmModelRead:
    return read_models(session, [model])[0]


def _read(model: RegisteredModel, llm: LlmModel | None) -> ModelRead | LlmModelRead:
    if llm is None:
        return ModelRead.model_validate(model)
    return LlmModelRead(
        id=model.id,
        domain_id=llm.domain_id,
        name=model.name,
        base_model=llm.base_model,
        provider=llm.provider,
        model_family=llm.model_family,
        version=llm.version,
        status=model.status,
        config=model.config,
        capabilities=llm.capabilities,
        created_at=model.created_at,
        updated_at=model.updated_at,
    )


def get_llm(session: Session, model: RegisteredModel) -> LlmModel | None:
    return session.get(LlmModel, model.id)


def resting_status(model: RegisteredModel) -> ModelStatus:
    """The status of a model that is neither training, deployed nor archived: trained when it
    has something to serve (a fitted version, or a fine-tuned LLM), else as first made."""
    if model.kind == "llm":
        return ModelStatus.trained if model.config.get("fine_tuned_model") else ModelStatus.registered
    return ModelStatus.trained if model.artifact_key else ModelStatus.configured


def status_after_training(model: RegisteredModel, previous: str | None, outcome: JobStatus) -> ModelStatus:
    """Where a training job leaves its model. A deployed model stays deployed, serving its
    newest version (a retraining that failed or was cancelled leaves the one it served);
    any other model with a version is trained. Without a version: a cancelled first
    training leaves the model configured, a failed one failed."""
    if model.artifact_key is not None:
        return ModelStatus.deployed if previous == ModelStatus.deployed.value else ModelStatus.trained
    return ModelStatus.configured if outcome == JobStatus.cancelled else ModelStatus.failed


def model_folder(workspace_id: uuid.UUID, model_id: uuid.UUID) -> str:
    """Where a model's artifacts live; deleted with the model."""
    return f"models/{workspace_id.hex}/{model_id.hex}"


def delete_model(session: Session, store: ArtifactStore, model: RegisteredModel) -> None:
    """The row and its artifacts (removed once the deletion has committed)."""
    if model.status == ModelStatus.training:
        raise ModelBusy(f"Model '{model.id}' is training; cancel its job first", {"job_id": str(model.training_job_id)})
    folder = model_folder(model.workspace_id, model.id)
    session.delete(model)
    session.flush()
    on_commit(session, lambda: store.delete_prefix(folder))


def deploy(session: Session, model: RegisteredModel) -> RegisteredModel:
    """A trained model becomes the one to serve (its latest version)."""
    if model.status not in (ModelStatus.trained, ModelStatus.deployed):
        raise IllegalStatusChange(f"Only a trained model can be deployed; this one is {model.status.value}", {"status": model.status.value})
    model.status = ModelStatus.deployed
    session.flush()
    return model


def archive(session: Session, model: RegisteredModel) -> RegisteredModel:
    if model.status == ModelStatus.training:
        raise ModelBusy(f"Model '{model.id}' is training; cancel its job first", {"job_id": str(model.training_job_id)})
    model.status = ModelStatus.archived
    session.flush()
    return model


def restore(session: Session, model: RegisteredModel) -> RegisteredModel:
    if model.status != ModelStatus.archived:
        raise IllegalStatusChange(f"Model '{model.id}' is not archived", {"status": model.status.value})
    model.status = resting_status(model)
    session.flush()
    return model


# --- versions -------------------------------------------------------------------

# What a training writes into its version's folder: the forecast, the evaluation, and
# the fitted model that predictions load (a pickle: see forecasting/forecasters.py).
FORECASTER_FILE = "forecaster.pkl"
VERSION_ARTIFACTS = ("forecast.json", "results.json", FORECASTER_FILE)


def version_folder(model: RegisteredModel) -> str:
    """A fresh folder for the artifacts of the model's next version."""
    return f"{model_folder(model.workspace_id, model.id)}/versions/{uuid.uuid4().hex}"


def record_version(session: Session, model: RegisteredModel, prefix: str, training_job_id: uuid.UUID | None, *, main_artifact: str = "forecast.json") -> ModelVersion:
    """The model's next version, made current: its artifacts are in `prefix`, and
    `main_artifact` is the one the model's reads start from."""
    last = session.scalar(select(ModelVersion.number).where(ModelVersion.model_id == model.id).order_by(ModelVersion.number.desc()).limit(1))
    version = ModelVersion(
        model_id=model.id,
        workspace_id=model.workspace_id,
        number=(last or 0) + 1,
        algorithm=model.algorithm,
        hyperparameters=model.hyperparameters,
        metrics=model.metrics,
        artifact_prefix=prefix,
        training_job_id=training_job_id,
    )
    session.add(version)
    model.artifact_key = f"{prefix}/{main_artifact}"
    session.flush()
    return version


def list_versions(session: Session, model: RegisteredModel) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion).where(ModelVersion.model_id == model.id).order_by(ModelVersion.number.desc())))


def get_version(session: Session, model: RegisteredModel, number: int | None) -> ModelVersion:
    """Version `number`, or the latest when None; 404 when the model has no such version."""
    stmt = select(ModelVersion).where(ModelVersion.model_id == model.id)
    stmt = stmt.where(ModelVersion.number == number) if number is not None else stmt.order_by(ModelVersion.number.desc()).limit(1)
    version = session.scalar(stmt)
    if version is None:
        raise VersionNotFound(f"Model '{model.id}' has no version {number if number is not None else 'yet'}", {"version": "train the model first" if number is None else "no such version"})
    return version


def save_version(session: Session, model: RegisteredModel, number: int | None, note: str | None) -> ModelVersion:
    version = get_version(session, model, number)
    version.saved = True
    version.note = note if note is not None else version.note
    session.flush()
    return version


def export_version(store: ArtifactStore, model: RegisteredModel, version: ModelVersion, secret: str) -> bytes:
    files = {}
    for name in VERSION_ARTIFACTS:
        if store.exists(key := f"{version.artifact_prefix}/{name}"):
            with store.open(key) as handle:
                files[name] = handle.read()
    description = {
        "kind": model.kind,
        "name": model.name,
        "algorithm": version.algorithm,
        "hyperparameters": version.hyperparameters,
        "config": model.config,
        "metrics": version.metrics,
        "version": version.number,
        "trained_at": version.created_at.isoformat(),
    }
    return bundles.write_bundle(description, files, secret)


def import_bundle(session: Session, store: ArtifactStore, workspace_id: uuid.UUID, user_id: uuid.UUID, data: bytes, secret: str, name: str | None) -> RegisteredModel:
    """A new trained model of the workspace from a verified bundle: the registry entry
    and its version 1, with the bundle's artifacts (no dataset: it stays where it was)."""
    bundle = bundles.read_bundle(data, secret, max_unpacked_bytes=4 * len(data) + 10_485_760)
    manifest = bundle.manifest
    model = RegisteredModel(
        workspace_id=workspace_id,
        created_by=user_id,
        kind=manifest["kind"],
        name=(name or manifest["name"])[:200],
        algorithm=manifest["algorithm"],
        hyperparameters=manifest["hyperparameters"],
        config=manifest["config"],
        status=ModelStatus.trained,
        metrics=manifest["metrics"],
        trained_at=utcnow(),
    )
    session.add(model)
    session.flush()
    prefix = version_folder(model)
    on_rollback(session, lambda: store.delete_prefix(prefix))
    for file_name, content in bundle.files.items():
        store.write_bytes(f"{prefix}/{file_name}", content)
    record_version(session, model, prefix, None)
    return model
