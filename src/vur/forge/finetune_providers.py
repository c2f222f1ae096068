"""Fine-tuning at OpenAI and Together over their HTTP APIs: upload the training file, create
the job, read its status and metrics, cancel it. One small adapter per provider, both
answering in our terms (`Remote`); every failure is a `ProviderError` that says whether
waiting can help (429, 5xx, timeouts) or not (a bad key, a refused file or model).

OpenAI: POST /files (purpose fine-tune), /fine_tuning/jobs[/{id}[/cancel|/events]].
Together: POST /files/upload (purpose, file_name, file_type), /fine-tunes[/{id}[/cancel|/events]].
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from vur.forge.providers import MAX_RETRY_AFTER_SECONDS, base_url, retry_after
from vur.settings import Settings

if TYPE_CHECKING:
    import httpx

ERROR_CHARS = 1000
# The newest jobs looked through for one made from a given file: every file is uploaded
# for one job, just before it is created, so it is among the newest.
LISTED_JOBS = 100


@dataclass(frozen=True)
class Remote:
    """A provider's job, in our words: status pending | running | completed | failed | cancelled."""

    id: str
    status: str
    external_status: str
    fine_tuned_model: str | None = None
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


class ProviderError(Exception):
    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(message[:ERROR_CHARS])
        self.transient = transient
        self.retry_after = retry_after


class Adapter(ABC):
    name = ""
    jobs_path = ""
    # The provider's job statuses, mapped to ours; our hyperparameter names, mapped to its.
    statuses: dict[str, str] = {}
    names: dict[str, str] = {}

    def __init__(self, url: str, api_key: str, timeout: float) -> None:
        import httpx  # on first use: the API starts without it

        if not api_key:
            raise ProviderError(f"No API key for {self.name}: set VUR_FORGE_{self.name.upper()}_API_KEY", transient=False)
        self.client = httpx.Client(base_url=url.rstrip("/") + "/", headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout)

    def __enter__(self) -> Adapter:
        return self

    def __exit__(self, *_: object) -> None:
        self.client.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ProviderError(f"{self.name}: {type(exc).__name__}: {exc}", transient=True) from exc
        if response.is_success:
            try:
                return response.json()
            except ValueError as exc:
                raise ProviderError(f"{self.name} answered {response.status_code} with something that is not JSON", transient=True) from exc
        transient = response.status_code in (408, 409, 429) or response.status_code >= 500
        wait = retry_after(response.headers)
        raise ProviderError(
            f"{self.name} answered {response.status_code}: {_error_message(response)}",
            transient=transient,
            retry_after=min(wait, MAX_RETRY_AFTER_SECONDS) if wait is not None else None,
        )

    def remote(self, job: dict[str, Any], metrics: dict[str, Any], error: str | None) -> Remote:
        external = str(job.get("status", ""))
        status = self.statuses.get(external)
        if status is None:
            raise ProviderError(f"{self.name} reported an unknown job status {external!r}", transient=True)
        return Remote(str(job["id"]), status, external, self.fine_tuned_model(job), error if status == "failed" else None, metrics)

    @abstractmethod
    def upload(self, filename: str, handle: BinaryIO) -> str:
        """The provider's id of the uploaded training file."""

    @abstractmethod
    def create(self, file_id: str, base_model: str, method: str, hyperparameters: dict[str, Any], suffix: str | None) -> Remote:
        """A new job; `method` is sft or dpo."""

    @abstractmethod
    def retrieve(self, job_id: str) -> Remote: ...

    def made_from(self, file_id: str) -> Remote | None:
        """The job already created from this training file, if any: a create whose answer
        was lost (a timeout, a crash before it was recorded) is found, not made twice."""
        for job in self.call("GET", self.jobs_path, params={"limit": LISTED_JOBS}).get("data", []):
            if job.get("training_file") == file_id:
                return self._read(job)
        return None

    @abstractmethod
    def _read(self, job: dict[str, Any]) -> Remote: ...

    @abstractmethod
    def cancel(self, job_id: str) -> Remote: ...

    @abstractmethod
    def fine_tuned_model(self, job: dict[str, Any]) -> str | None: ...


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(error or (body.get("message") if isinstance(body, dict) else None) or body)[:300]


class OpenAIAdapter(Adapter):
    name = "openai"
    jobs_path = "fine_tuning/jobs"
    statuses = {"validating_files": "pending", "queued": "pending", "running": "running", "succeeded": "completed", "failed": "failed", "cancelled": "cancelled"}
    names = {"epochs": "n_epochs", "batch_size": "batch_size", "learning_rate_multiplier": "learning_rate_multiplier"}

    def upload(self, filename: str, handle: BinaryIO) -> str:
        return self.call("POST", "files", data={"purpose": "fine-tune"}, files={"file": (filename, handle, "application/jsonl")})["id"]

    def create(self, file_id: str, base_model: str, method: str, hyperparameters: dict[str, Any], suffix: str | None) -> Remote:
        kind = "dpo" if method == "dpo" else "supervised"
        body: dict[str, Any] = {
            "model": base_model,
            "training_file": file_id,
            "method": {"type": kind, kind: {"hyperparameters": {self.names[k]: v for k, v in hyperparameters.items()}}},
        }
        if suffix:
            body["suffix"] = suffix
        return self._read(self.call("POST", "fine_tuning/jobs", json=body))

    def retrieve(self, job_id: str) -> Remote:
        return self._read(self.call("GET", f"fine_tuning/jobs/{job_id}"))

    def cancel(self, job_id: str) -> Remote:
        return self._read(self.call("POST", f"fine_tuning/jobs/{job_id}/cancel"))

    def fine_tuned_model(self, job: dict[str, Any]) -> str | None:
        return job.get("fine_tuned_model")

    def _read(self, job: dict[str, Any]) -> Remote:
        metrics: dict[str, Any] = {"trained_tokens": job["trained_tokens"]} if job.get("trained_tokens") is not None else {}
        if job.get("status") in ("running", "succeeded"):
            # Newest first: the first metrics event is the latest step's.
            events = self.call("GET", f"fine_tuning/jobs/{job['id']}/events", params={"limit": 50}).get("data", [])
            latest = next((e.get("data") or {} for e in events if e.get("type") == "metrics"), {})
            metrics |= {k: v for k, v in latest.items() if isinstance(v, int | float)}
        error = job.get("error") or {}
        return self.remote(job, metrics, error.get("message") or "the provider reported the job failed")


class TogetherAdapter(Adapter):
    name = "together"
    jobs_path = "fine-tunes"
    statuses = {
        "pending": "pending",
        "queued": "pending",
        "running": "running",
        "compressing": "running",
        "uploading": "running",
        "cancel_requested": "running",
        "completed": "completed",
        "error": "failed",
        "user_error": "failed",
        "cancelled": "cancelled",
    }
    names = {"epochs": "n_epochs", "batch_size": "batch_size", "learning_rate": "learning_rate", "warmup_ratio": "warmup_ratio"}

    def upload(self, filename: str, handle: BinaryIO) -> str:
        data = {"purpose": "fine-tune", "file_name": filename, "file_type": "jsonl"}
        return self.call("POST", "files/upload", data=data, files={"file": (filename, handle, "application/jsonl")})["id"]

    def create(self, file_id: str, base_model: str, method: str, hyperparameters: dict[str, Any], suffix: str | None) -> Remote:
        body: dict[str, Any] = {"model": base_model, "training_file": file_id, "training_method": {"method": method}}
        body |= {self.names[k]: v for k, v in hyperparameters.items()}
        if suffix:
            body["suffix"] = suffix
        return self._read(self.call("POST", "fine-tunes", json=body))

    def retrieve(self, job_id: str) -> Remote:
        return self._read(self.call("GET", f"fine-tunes/{job_id}"))

    def cancel(self, job_id: str) -> Remote:
        return self._read(self.call("POST", f"fine-tunes/{job_id}/cancel"))

    def fine_tuned_model(self, job: dict[str, Any]) -> str | None:
        return job.get("model_output_name") or job.get("output_name")

    def _read(self, job: dict[str, Any]) -> Remote:
        # Events come oldest first: the last with a step is the progress, the last error says why it failed.
        events = self.call("GET", f"fine-tunes/{job['id']}/events").get("data", [])
        stepped = [e for e in events if e.get("step") is not None]
        metrics = {k: v for k, v in (stepped[-1] if stepped else {}).items() if k in ("step", "total_steps") and v is not None}
        if job.get("token_count") is not None:
            metrics["token_count"] = job["token_count"]
        errors = [e.get("message") for e in events if e.get("level") == "error" or str(e.get("type", "")).endswith("error")]
        return self.remote(job, metrics, next((m for m in reversed(errors) if m), "the provider reported the job failed"))


ADAPTERS: dict[str, type[Adapter]] = {"openai": OpenAIAdapter, "together": TogetherAdapter}
# The hyperparameters (our names) each provider takes.
ACCEPTED = {name: frozenset(adapter.names) for name, adapter in ADAPTERS.items()}


def adapter_for(provider: str, settings: Settings, api_key: str) -> Adapter:
    """`api_key`: the workspace's own key for the provider, or the server's."""
    return ADAPTERS[provider](base_url(settings, provider, {}), api_key, settings.forge_provider_timeout_seconds)
