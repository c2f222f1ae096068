"""Advancing fine-tuning jobs from every API process at once, never twice for one job.

Each pass claims the due active jobs with a compare-and-set on `next_poll_at` (the value it
read must still be there; the claim moves it past a lease), commits, talks to the provider
outside any transaction, then records what it learnt only if its claim still holds. A job
is submitted in two recorded steps (file upload, then job creation, or adoption of the job
a lost answer already made from that file), then polled for status and metrics every
`forge_finetune_poll_seconds` until it ends; a requested cancel is made at the provider.
A 429 waits for its Retry-After, a 5xx or a timeout backs off, and MAX_FAILED_POLLS of
those in a row fail the job; a refusal (bad key, bad file or model) fails it at once.
Nothing holds a worker while a provider trains for hours.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update

from vur.core.db import Database, utcnow
from vur.core.periodic import PeriodicTask
from vur.core.storage import ArtifactStore
from vur.forge import instruction
from vur.forge.finetune_providers import Adapter, ProviderError, Remote, adapter_for
from vur.forge.finetuning import ACTIVE, settle_model
from vur.forge.models import DatasetExport, FineTuningJob
from vur.registry.models import RegisteredModel
from vur.settings import Settings

log = structlog.get_logger("vur.forge.finetune")

BATCH = 8
MAX_FAILED_POLLS = 5
# Calls one pass may make for a job (upload, create, events...), each within the timeout.
LEASE_CALLS = 6
LEASE_GRACE_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 3600.0


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    lease_until: datetime
    provider: str
    base_model: str
    method: str
    hyperparameters: dict[str, Any]
    external_job_id: str | None
    external_file_id: str | None
    cancel_requested: bool
    export_key: str | None
    failed_polls: int
    api_key: str = field(repr=False, default="")


@dataclass(frozen=True)
class Outcome:
    remote: Remote | None = None
    file_id: str | None = None
    error: ProviderError | None = None
    # Cancelled after its file was uploaded, and no job was ever made from that file.
    withdrawn: bool = False

    @property
    def uploaded(self) -> bool:
        """The training file reached the provider; no job was created yet."""
        return self.file_id is not None and self.remote is None and self.error is None


def finetune_poller(database: Database, store: ArtifactStore, settings: Settings) -> PeriodicTask:
    return PeriodicTask("vur-finetune-poller", settings.forge_finetune_poll_seconds, lambda: advance_due(database, store, settings))


def advance_due(database: Database, store: ArtifactStore, settings: Settings) -> int:
    """One pass: claim what is due, advance each, record it. How many were advanced."""
    now = utcnow()
    lease = timedelta(seconds=LEASE_CALLS * settings.forge_provider_timeout_seconds + LEASE_GRACE_SECONDS)
    claimed = claim(database, settings, now, now + lease)
    for job in claimed:
        outcome = advance(store, settings, job)
        if record(database, settings, job, outcome) and outcome.uploaded:
            # The file id is recorded: now create the job from it, in the same lease.
            job = replace(job, external_file_id=outcome.file_id)
            record(database, settings, job, advance(store, settings, job))
    return len(claimed)


def claim(database: Database, settings: Settings, now: datetime, lease_until: datetime) -> list[Claimed]:
    with database.session() as session:
        due = session.execute(
            select(FineTuningJob.id, FineTuningJob.next_poll_at)
            .where(FineTuningJob.status.in_(ACTIVE), FineTuningJob.next_poll_at <= now)
            .order_by(FineTuningJob.next_poll_at)
            .limit(BATCH)
        ).all()
        won = [
            job_id
            for job_id, seen in due
            if session.execute(
                update(FineTuningJob)
                .where(FineTuningJob.id == job_id, FineTuningJob.next_poll_at == seen, FineTuningJob.status.in_(ACTIVE))
                .values(next_poll_at=lease_until)
                .execution_options(synchronize_session=False)
            ).rowcount
            == 1
        ]
        rows = session.execute(
            select(FineTuningJob, DatasetExport.s3_key).outerjoin(DatasetExport, DatasetExport.id == FineTuningJob.dataset_export_id).where(FineTuningJob.id.in_(won))
        ).all()
        return [
            Claimed(
                j.id, lease_until, j.provider, j.base_model, j.method, j.hyperparameters, j.external_job_id, j.external_file_id, j.cancel_requested, key, j.failed_polls,
                instruction.api_key(session, settings, j.workspace_id, j.provider),
            )
            for j, key in rows
        ]


def advance(store: ArtifactStore, settings: Settings, job: Claimed) -> Outcome:
    """Talk to the provider: cancel, submit or poll. Outside any transaction."""
    try:
        with adapter_for(job.provider, settings, job.api_key) as adapter:
            if job.external_job_id is not None:
                return Outcome(adapter.cancel(job.external_job_id) if job.cancel_requested else adapter.retrieve(job.external_job_id))
            return _submit(store, adapter, job)
    except ProviderError as exc:
        return Outcome(error=exc)


def _submit(store: ArtifactStore, adapter: Adapter, job: Claimed) -> Outcome:
    """Two steps, each recorded before the next: upload the file, then create the job from
    it, unless the provider already has one made from that file (a create whose answer
    was lost). So no failure or crash leaves a second, untracked job at the provider."""
    if job.external_file_id is None:
        if job.export_key is None or not store.exists(job.export_key):
            raise ProviderError("The export this job trains on no longer exists", transient=False)
        with store.open(job.export_key) as handle:
            return Outcome(file_id=adapter.upload(f"vur-{job.id.hex}.jsonl", handle))
    made = adapter.made_from(job.external_file_id)
    if job.cancel_requested:
        return Outcome(adapter.cancel(made.id)) if made is not None else Outcome(withdrawn=True)
    if made is not None:
        return Outcome(made)
    hyperparameters = {k: v for k, v in job.hyperparameters.items() if k != "suffix"}
    return Outcome(adapter.create(job.external_file_id, job.base_model, job.method, hyperparameters, job.hyperparameters.get("suffix")))


def record(database: Database, settings: Settings, claimed: Claimed, outcome: Outcome) -> bool:
    """Store what the provider said, if our claim still holds; whether it did."""
    with database.session() as session:
        job = session.get(FineTuningJob, claimed.id, with_for_update=True)
        if job is None or job.next_poll_at != claimed.lease_until:
            return False  # deleted with its model, or our lease lapsed and another process owns it
        now = utcnow()
        if job.status not in ACTIVE:
            # Cancelled here while we submitted it: cancel what we made at the provider.
            if outcome.remote is not None:
                _cancel_quietly(settings, claimed, outcome.remote.id)
            return False
        if outcome.error is not None:
            _failed_call(job, outcome.error, settings, now)
        elif outcome.uploaded:
            job.external_file_id, job.failed_polls = outcome.file_id, 0  # the lease is kept for the create
        elif outcome.withdrawn:
            job.status, job.error_message = "cancelled", "Cancelled before it reached the provider"
        else:
            assert outcome.remote is not None
            _apply(job, outcome.remote, claimed, settings, now)
        if job.status not in ACTIVE:
            job.completed_at, job.next_poll_at = now, None
            settle_model(session.get(RegisteredModel, job.model_id, with_for_update=True), job.status, job.metrics.get("fine_tuned_model"))
        log.info("finetune_advanced", job_id=str(job.id), status=job.status, external_status=job.external_status, error=job.error_message)
        return True


def _apply(job: FineTuningJob, remote: Remote, claimed: Claimed, settings: Settings, now: datetime) -> None:
    job.external_job_id, job.external_status, job.failed_polls = remote.id, remote.external_status, 0
    # A cancel the provider accepted ends the job here, even while it reports cancel_requested.
    cancelled = claimed.cancel_requested and claimed.external_job_id is not None and remote.status in ACTIVE
    job.status = "cancelled" if cancelled else remote.status
    job.metrics = {**job.metrics, **remote.metrics, **({"fine_tuned_model": remote.fine_tuned_model} if remote.fine_tuned_model else {})}
    job.error_message = remote.error
    if job.status == "running" and job.started_at is None:
        job.started_at = now
    # A cancel asked for during the submission is made at the next pass, at once.
    job.next_poll_at = now if job.cancel_requested and job.status in ACTIVE else now + timedelta(seconds=settings.forge_finetune_poll_seconds)


def _failed_call(job: FineTuningJob, error: ProviderError, settings: Settings, now: datetime) -> None:
    job.failed_polls += 1
    if not error.transient or job.failed_polls >= MAX_FAILED_POLLS:
        job.status = "failed"
        job.error_message = str(error) if not error.transient else f"{error} (gave up after {job.failed_polls} failed calls)"
        return
    backoff = settings.forge_finetune_poll_seconds * 2 ** (job.failed_polls - 1)
    job.error_message = str(error)
    job.next_poll_at = now + timedelta(seconds=min(error.retry_after if error.retry_after is not None else backoff, MAX_BACKOFF_SECONDS))


def _cancel_quietly(settings: Settings, claimed: Claimed, external_job_id: str) -> None:
    try:
        with adapter_for(claimed.provider, settings, claimed.api_key) as adapter:
            adapter.cancel(external_job_id)
    except ProviderError as exc:
        log.warning("finetune_orphan_cancel_failed", external_job_id=external_job_id, error=str(exc))
