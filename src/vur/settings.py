"""Every setting VUR reads, from the environment (prefix ``VUR_``) or a ``.env`` file.

`.env.example` lists them all with their defaults; keep the two in step.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VUR_", env_file=".env", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./data")
    # Empty means an SQLite file inside data_dir.
    database_url: str = ""
    cors_origins: list[str] = Field(default_factory=lambda: ["http://localhost:3000", "http://127.0.0.1:3000", "http://localhost:5173"])
    log_level: str = "INFO"
    log_json: bool = True
    # How many recent log records the process keeps in memory for GET /api/v1/monitoring/logs.
    log_buffer_size: int = Field(default=2000, ge=1)

    # Auth. An empty secret is replaced by a random one kept in data_dir (development only).
    secret_key: str = ""
    access_token_minutes: int = 15
    refresh_token_days: int = 14
    login_max_failures_per_account: int = 5
    login_max_failures_per_client: int = 20
    login_failure_window_seconds: int = 900

    # Request limits.
    max_body_bytes: int = 1_048_576
    max_upload_bytes: int = 200 * 1_048_576

    # Jobs. "inprocess": the API process runs jobs in a pool of worker processes.
    # "external": the API only enqueues; `vur worker` processes run them.
    job_runner: Literal["inprocess", "external"] = "inprocess"
    job_processes: int = 1
    job_heartbeat_seconds: float = 5.0
    job_stale_after_seconds: float = 30.0
    job_log_lines: int = 200
    # Extra modules imported by runners so that they can register more job types.
    job_modules: list[str] = Field(default_factory=list)
    # Events between processes (workers, API replicas) go through Redis pub/sub when this
    # names a server (redis://host:6379/0; needs the `scale` extra), else the outbox table.
    redis_url: str = ""

    # Monitoring: seconds between system snapshots pushed on the WebSocket "system" topic,
    # and between alert checks (0 turns either off).
    system_metrics_interval_seconds: float = Field(default=5.0, ge=0)
    alert_check_seconds: float = Field(default=10.0, ge=0)
    # Drift of deployed models is part of the alert checks, at most this often.
    drift_check_seconds: float = Field(default=300.0, ge=0)

    # Prediction streams from external databases. Each API process checks for due
    # streams this often; a source's host must be one of `source_allowed_hosts` when
    # that list is not empty. SQLite sources must lie in the workspace's own folder of
    # `sources_dir` (`<sources_dir>/<workspace id>/`).
    stream_scheduler: bool = True
    stream_poll_seconds: float = 0.5
    source_allowed_hosts: list[str] = Field(default_factory=list)

    # Outgoing webhooks. Each API process looks for due deliveries every
    # `webhook_poll_seconds` (0 turns sending off); a failed delivery is retried after
    # `webhook_retry_base_seconds`, doubling each time, up to `webhook_max_attempts`.
    # Targets on loopback, private, link-local or metadata addresses are refused unless
    # `webhook_allow_private_targets` is set.
    webhook_poll_seconds: float = Field(default=1.0, ge=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_max_attempts: int = Field(default=6, ge=1)
    webhook_retry_base_seconds: float = Field(default=10.0, ge=0)
    webhook_allow_private_targets: bool = False

    # Seed 003's machine paths (/machines/, /train/, /ranking/) called without a token act
    # as this user (an email) when it is set: for a trusted single-workspace deployment
    # whose frontend sends no token. Empty: they answer 401 like every other route.
    machine_paths_user: str = ""
    # Incoming /webhook/treinamento/ reports signed with this secret (X-VUR-Timestamp,
    # X-VUR-Signature) are accepted without a token. Empty: a token is required.
    machine_webhook_secret: str = ""

    # Dataset forge: the LLM providers that generate instruction data, all through the
    # OpenAI client. Base URLs per provider (openai_compatible takes its own from the
    # dataset's generation_config); API keys used when the workspace stored none.
    forge_openai_base_url: str = "https://api.openai.com/v1"
    forge_together_base_url: str = "https://api.together.xyz/v1"
    forge_gemini_base_url: str = "https://generativelanguage.googleapis.com/v1beta/openai/"
    forge_openai_api_key: str = ""
    forge_together_api_key: str = ""
    forge_gemini_api_key: str = ""
    # An openai_compatible base_url must name a public host, or one of these (say, the
    # LAN's vLLM or Ollama server); metadata services are refused whatever this says.
    forge_compatible_allowed_hosts: list[str] = Field(default_factory=list)
    # Provider calls one generation job has in flight at once.
    forge_generation_concurrency: int = Field(default=16, ge=1, le=256)
    # One call's time limit; a timeout, a 429 or a 5xx is retried up to max_retries times,
    # waiting backoff_seconds doubled each time (or the Retry-After the provider sends).
    forge_provider_timeout_seconds: float = Field(default=60.0, gt=0)
    forge_provider_max_retries: int = Field(default=4, ge=0, le=20)
    forge_provider_backoff_seconds: float = Field(default=1.0, ge=0)
    # Dataset exports: how long a signed download URL stays valid, in seconds.
    forge_export_url_seconds: int = Field(default=3600, ge=1, le=7 * 86_400)
    # Fine-tuning jobs: each API process advances the due ones (submit, poll status and
    # metrics, cancel at the provider) this often; 0 turns it off.
    forge_finetune_poll_seconds: float = Field(default=30.0, ge=0)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'vur.db'}"

    @property
    def sources_dir(self) -> Path:
        return self.data_dir / "sources"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    def resolved_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        if self.environment == "production":
            raise RuntimeError("VUR_SECRET_KEY must be set in production")
        key_file = self.data_dir / "secret.key"
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return key_file.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
