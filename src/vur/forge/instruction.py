"""Instruction datasets: rows of the shared `datasets` table (kind "instruction") with
their forge part, generation bookkeeping (what to generate from, storing batches of items,
the end of a run) and the workspaces' provider keys. No HTTP here; the provider calls
are generation.py's, run by the `forge.generate` job."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, exists, select, update
from sqlalchemy.orm import Session

from vur.core.db import utcnow
from vur.core.outbound import TargetRefused, checked_target
from vur.core.repository import paginate
from vur.core.security import decrypt_secret, encrypt_secret
from vur.datasets import service as datasets
from vur.datasets.models import Dataset
from vur.forge import generation, providers, quality
from vur.forge import service as forge
from vur.forge.exceptions import CannotGenerate, GenerationBusy, NotInstructionDataset, ProviderKeyNotFound
from vur.forge.models import InstructionDataset, InstructionItem, ProviderKey, Segment, Template
from vur.forge.schemas import GenerateRequest, GenerationConfig, InstructionDatasetCreate, InstructionDatasetRead, InstructionDatasetUpdate, SegmentFilter
from vur.jobs import service as jobs
from vur.jobs.models import Job
from vur.settings import Settings

GENERATE_JOB = "forge.generate"
# Statuses from which a generation may start.
GENERATABLE = ("draft", "ready")


def create_dataset(session: Session, settings: Settings, workspace_id: uuid.UUID, user_id: uuid.UUID, body: InstructionDatasetCreate) -> tuple[Dataset, InstructionDataset]:
    forge.get_domain(session, body.domain_id, workspace_id)
    _check_sources(session, workspace_id, body.domain_id, body.template_id, body.generation_config, body.segment_filter)
    _check_endpoint(settings, body.provider, body.generation_config.base_url)
    chosen = body.segment_filter
    dataset = Dataset(workspace_id=workspace_id, created_by=user_id, kind="instruction", name=body.name, description=body.description)
    session.add(dataset)
    session.flush()
    extra = InstructionDataset(
        dataset_id=dataset.id,
        workspace_id=workspace_id,
        domain_id=body.domain_id,
        template_id=body.template_id,
        use_case=body.use_case,
        provider=body.provider,
        target_model_family=body.target_model_family,
        status="draft",
        version=1,
        generation_config=body.generation_config.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
        segment_filter=chosen.model_dump(mode="json", exclude_none=True),
        generation_report={},
    )
    session.add(extra)
    session.flush()
    return dataset, extra


def _check_sources(session: Session, workspace_id: uuid.UUID, domain_id: uuid.UUID, template_id: uuid.UUID | None, config: GenerationConfig, chosen: SegmentFilter) -> None:
    """The template (of the dataset's domain, its placeholders given values) and the
    segment filter's domain and document exist in the workspace."""
    if template_id is not None:
        template = forge.get_template(session, template_id, workspace_id)
        if template.domain_id != domain_id:
            raise CannotGenerate("The template belongs to another domain", {"template_id": f"a template of domain '{template.domain_id}'"})
        missing = sorted(set(template.variables) - set(config.variables))
        if missing:
            raise CannotGenerate("The template's placeholders need values", {"generation_config.variables": f"give values for {missing}"})
    if chosen.domain_id is not None:
        forge.get_domain(session, chosen.domain_id, workspace_id)
    if chosen.document_id is not None:
        forge.get_document(session, chosen.document_id, workspace_id)


def _check_endpoint(settings: Settings, provider: str, base_url: str | None) -> None:
    """An openai_compatible base_url is a URL the user chose that the server will call:
    it must be public, or a host the operator listed (a vLLM or Ollama on the LAN)."""
    if provider != "openai_compatible" or base_url is None:
        return
    try:
        checked_target(base_url, allow_private=False, allowed_hosts=settings.forge_compatible_allowed_hosts)
    except TargetRefused as exc:
        raise CannotGenerate(
            "The generation endpoint may not be reached from this server",
            {"generation_config.base_url": f"{exc}; an operator can allow a private host by listing it in VUR_FORGE_COMPATIBLE_ALLOWED_HOSTS"},
        ) from exc


def update_dataset(session: Session, settings: Settings, workspace_id: uuid.UUID, dataset_id: uuid.UUID, body: InstructionDatasetUpdate) -> tuple[Dataset, InstructionDataset]:
    dataset, extra = get_instruction(session, dataset_id, workspace_id, for_update=True)
    if extra.status == "generating":
        raise GenerationBusy(f"Dataset '{dataset_id}' is generating; wait for it to end", {"status": "generating"})
    changes = body.model_dump(exclude_unset=True)
    config = body.generation_config or GenerationConfig.model_validate(extra.generation_config)
    chosen = body.segment_filter or SegmentFilter.model_validate(extra.segment_filter)
    _check_sources(session, workspace_id, extra.domain_id, changes.get("template_id", extra.template_id), config, chosen)
    _check_endpoint(settings, extra.provider, config.base_url)
    for name in ("name", "description"):
        if name in changes and (changes[name] is not None or name == "description"):
            setattr(dataset, name, changes[name])
    for name in ("template_id", "use_case", "target_model_family"):
        if name in changes:
            setattr(extra, name, changes[name])
    if body.generation_config is not None:
        extra.generation_config = config.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    if body.segment_filter is not None:
        extra.segment_filter = chosen.model_dump(mode="json", exclude_none=True)
    if changes.keys() & {"template_id", "generation_config", "segment_filter"}:
        extra.version += 1
    if body.archived is not None:
        extra.status = "archived" if body.archived else ("ready" if extra.total_items else "draft")
    _touch(session, dataset_id)
    session.flush()
    return dataset, extra


def list_items(session: Session, dataset: Dataset, *, review_status: str | None, min_quality_score: float | None, limit: int, offset: int) -> tuple[list[InstructionItem], int]:
    """A dataset's items of every status, oldest first (a tabular dataset has none)."""
    stmt = select(InstructionItem).where(InstructionItem.dataset_id == dataset.id)
    if review_status is not None:
        stmt = stmt.where(InstructionItem.review_status == review_status)
    if min_quality_score is not None:
        stmt = stmt.where(InstructionItem.quality_score >= min_quality_score)
    return paginate(session, stmt.order_by(InstructionItem.created_at, InstructionItem.id), limit=limit, offset=offset)


def get_instruction(session: Session, dataset_id: uuid.UUID, workspace_id: uuid.UUID, *, for_update: bool = False) -> tuple[Dataset, InstructionDataset]:
    dataset = datasets.get_dataset(session, dataset_id, workspace_id)
    extra = session.get(InstructionDataset, dataset_id, with_for_update=for_update) if dataset.kind == "instruction" else None
    if extra is None:
        raise NotInstructionDataset(f"Dataset '{dataset_id}' is not an instruction dataset", {"kind": dataset.kind})
    return dataset, extra


def read(dataset: Dataset, extra: InstructionDataset) -> InstructionDatasetRead:
    shared = {name: getattr(dataset, name) for name in ("id", "name", "description", "created_at", "updated_at")}
    own = {name: getattr(extra, name) for name in InstructionDatasetRead.model_fields if name not in shared and name != "kind"}
    return InstructionDatasetRead(**shared, **own)


def forge_parts(session: Session, rows: list[Dataset]) -> dict[uuid.UUID, InstructionDataset]:
    """The forge part of each instruction dataset among `rows`, by id (one query)."""
    ids = [row.id for row in rows if row.kind == "instruction"]
    if not ids:
        return {}
    return {extra.dataset_id: extra for extra in session.scalars(select(InstructionDataset).where(InstructionDataset.dataset_id.in_(ids)))}


def in_domain(domain_id: uuid.UUID) -> Select[tuple[uuid.UUID]]:
    """Ids of the instruction datasets of a domain, to filter a listing of datasets."""
    return select(InstructionDataset.dataset_id).where(InstructionDataset.domain_id == domain_id)


# --- provider keys ------------------------------------------------------------------------


def list_keys(session: Session, workspace_id: uuid.UUID) -> list[ProviderKey]:
    return list(session.scalars(select(ProviderKey).where(ProviderKey.workspace_id == workspace_id).order_by(ProviderKey.provider)))


def put_key(session: Session, settings: Settings, workspace_id: uuid.UUID, provider: str, api_key: str) -> ProviderKey:
    """Store (or replace) the workspace's key for a provider, encrypted."""
    row = session.scalar(select(ProviderKey).where(ProviderKey.workspace_id == workspace_id, ProviderKey.provider == provider).with_for_update())
    if row is None:
        row = ProviderKey(workspace_id=workspace_id, provider=provider)
        session.add(row)
    row.ciphertext, row.last4 = encrypt_secret(settings.resolved_secret_key(), api_key), api_key[-4:]
    session.flush()
    return row


def delete_key(session: Session, workspace_id: uuid.UUID, provider: str) -> None:
    row = session.scalar(select(ProviderKey).where(ProviderKey.workspace_id == workspace_id, ProviderKey.provider == provider))
    if row is None:
        raise ProviderKeyNotFound(f"No key is stored for provider '{provider}'")
    session.delete(row)
    session.flush()


def api_key(session: Session, settings: Settings, workspace_id: uuid.UUID, provider: str) -> str:
    """The workspace's key for the provider, else the server's (settings); may be empty."""
    stored = session.scalar(select(ProviderKey.ciphertext).where(ProviderKey.workspace_id == workspace_id, ProviderKey.provider == provider))
    return decrypt_secret(settings.resolved_secret_key(), stored) if stored else providers.settings_key(settings, provider)


# --- generation ---------------------------------------------------------------------------


def _selection(extra: InstructionDataset, segment_ids: list[str] | None) -> Select[tuple[Segment]]:
    """The segments a run generates from: those asked for, or those matching the dataset's
    filter, without an item of this dataset and template yet (so a re-run adds no duplicates)."""
    if segment_ids is not None:
        stmt = select(Segment).where(Segment.workspace_id == extra.workspace_id, Segment.id.in_([uuid.UUID(str(s)) for s in segment_ids]))
    else:
        chosen = extra.segment_filter
        stmt = forge.segments_query(
            extra.workspace_id,
            domain_id=uuid.UUID(chosen["domain_id"]) if chosen.get("domain_id") else extra.domain_id,
            document_id=uuid.UUID(chosen["document_id"]) if chosen.get("document_id") else None,
            use_case=chosen.get("use_case"),
            segment_type=chosen.get("segment_type"),
        )
    done = exists().where(InstructionItem.dataset_id == extra.dataset_id, InstructionItem.segment_id == Segment.id, InstructionItem.template_id == extra.template_id)
    return stmt.where(~done).order_by(Segment.document_id, Segment.position, Segment.id)


def start_generation(session: Session, settings: Settings, workspace_id: uuid.UUID, user_id: uuid.UUID, body: GenerateRequest) -> tuple[InstructionDataset, Job]:
    """Check that generation can run (else a 4xx saying why), mark the dataset generating
    and enqueue the job."""
    _, extra = get_instruction(session, body.dataset_id, workspace_id)
    if extra.template_id is None:
        raise CannotGenerate("The dataset has no template to generate with", {"template_id": "create the dataset with a template_id"})
    # Again at each run: the name may resolve elsewhere now, or the operator's list changed.
    _check_endpoint(settings, extra.provider, extra.generation_config.get("base_url"))
    if extra.provider != "openai_compatible" and not api_key(session, settings, workspace_id, extra.provider):
        raise CannotGenerate(
            f"No API key for provider '{extra.provider}'",
            {"provider": f"store one with POST /api/v1/provider-keys, or set VUR_FORGE_{extra.provider.upper()}_API_KEY on the server"},
        )
    segment_ids = [str(s) for s in dict.fromkeys(body.segment_ids)] if body.segment_ids else None
    if segment_ids is not None:
        found = {str(s) for s in session.scalars(select(Segment.id).where(Segment.workspace_id == workspace_id, Segment.id.in_(body.segment_ids)))}
        unknown = [s for s in segment_ids if s not in found]
        if unknown:
            raise CannotGenerate("Some segments do not exist", {"segment_ids": f"unknown: {unknown[:20]}"})
    if session.scalars(_selection(extra, segment_ids).limit(1)).first() is None:
        raise CannotGenerate("No segment to generate from", {"segments": "none match the dataset's segment_filter (or segment_ids), or every one already has an item"})
    # A conditional update, not a read then a write: two requests cannot both start a run.
    started = session.execute(
        update(InstructionDataset).where(InstructionDataset.dataset_id == extra.dataset_id, InstructionDataset.status.in_(GENERATABLE)).values(status="generating")
    ).rowcount
    if not started:
        session.refresh(extra)
        raise GenerationBusy(f"Dataset '{extra.dataset_id}' is {extra.status}", {"status": f"generation starts only from {' or '.join(GENERATABLE)}"})
    payload = {"dataset_id": str(extra.dataset_id), "segment_ids": segment_ids, "max_items": body.max_items, "batch_size": body.batch_size}
    job = jobs.enqueue(session, GENERATE_JOB, payload, workspace_id=workspace_id, created_by=user_id)
    session.refresh(extra)
    extra.job_id, extra.generation_report = job.id, {}
    _touch(session, extra.dataset_id)
    session.flush()
    return extra, job


def generation_plan(session: Session, settings: Settings, dataset_id: uuid.UUID, segment_ids: list[str] | None, max_items: int | None) -> generation.Plan:
    extra = session.get(InstructionDataset, dataset_id)
    template = session.get(Template, extra.template_id) if extra is not None and extra.template_id is not None else None
    if extra is None or template is None:
        raise LookupError(f"instruction dataset {dataset_id} or its template no longer exists")
    config = extra.generation_config
    stmt = _selection(extra, segment_ids)
    segments = session.scalars(stmt.limit(max_items) if max_items else stmt)
    existing = session.execute(
        select(InstructionItem.id, InstructionItem.instruction, InstructionItem.input_text, InstructionItem.ideal_response).where(InstructionItem.dataset_id == dataset_id)
    )
    return generation.Plan(
        provider=extra.provider,
        base_url=providers.base_url(settings, extra.provider, config),
        api_key=api_key(session, settings, extra.workspace_id, extra.provider),
        model=config.get("model") or providers.DEFAULT_MODELS[extra.provider],
        params={name: config[name] for name in ("temperature", "max_tokens", "top_p") if name in config},
        system_prompt=template.system_prompt,
        user_prompt_template=template.user_prompt_template,
        variables=config.get("variables", {}),
        expected_language=config.get("language"),
        segments=[generation.Source(segment.id, segment.content) for segment in segments],
        existing=[(row.id, quality.item_text(row._asdict())) for row in existing],
    )


def store_items(session: Session, dataset_id: uuid.UUID, rows: list[dict[str, Any]]) -> int:
    """One batch of generated items, with the dataset's counters, in one transaction. An
    item for a segment that already has one (of this dataset and template) is dropped."""
    extra = session.get(InstructionDataset, dataset_id, with_for_update=True)
    if extra is None or extra.status != "generating":
        raise LookupError(f"instruction dataset {dataset_id} is no longer generating")
    taken = set(
        session.scalars(
            select(InstructionItem.segment_id).where(
                InstructionItem.dataset_id == dataset_id,
                InstructionItem.template_id == extra.template_id,
                InstructionItem.segment_id.in_([row["segment_id"] for row in rows]),
            )
        )
    )
    fresh = [row for row in rows if row["segment_id"] not in taken]
    session.add_all(InstructionItem(workspace_id=extra.workspace_id, dataset_id=dataset_id, template_id=extra.template_id, review_status="pending", **row) for row in fresh)
    # Counters move by SQL expressions: exact even beside reviews changing them meanwhile.
    session.execute(
        update(InstructionDataset)
        .where(InstructionDataset.dataset_id == dataset_id)
        .values(total_items=InstructionDataset.total_items + len(fresh), pending_items=InstructionDataset.pending_items + len(fresh))
    )
    session.flush()
    return len(fresh)


def finish_generation(session: Session, dataset_id: uuid.UUID, report: dict[str, Any]) -> None:
    """The run is over: ready if the dataset has items (draft otherwise), with its report."""
    extra = session.get(InstructionDataset, dataset_id, with_for_update=True, populate_existing=True)
    if extra is None or extra.status != "generating":
        return
    extra.status = "ready" if extra.total_items else "draft"
    extra.generation_report = report
    _touch(session, dataset_id)
    session.flush()


def _touch(session: Session, dataset_id: uuid.UUID) -> None:
    # The shared row's updated_at tells a client that the dataset changed.
    session.execute(update(Dataset).where(Dataset.id == dataset_id).values(updated_at=utcnow()))


def generation_ended_unfinished(session: Session, job: Job) -> None:
    """The job ended failed or cancelled before recording its end (a cancel, a crash, an
    unexpected error): the dataset leaves `generating`, with the job's error as its report."""
    dataset_id = uuid.UUID(job.payload["dataset_id"])
    extra = session.get(InstructionDataset, dataset_id)
    if extra is not None and extra.status == "generating" and extra.job_id == job.id:
        finish_generation(session, dataset_id, {"error": job.error or "the generation job failed"})
