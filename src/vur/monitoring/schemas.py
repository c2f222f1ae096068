from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from vur.registry.models import ModelStatus

# --- system -----------------------------------------------------------------


class CpuStats(BaseModel):
    percent: float = Field(description="All cores, since the previous measurement")
    per_core_percent: list[float]
    count: int = Field(description="Logical cores")
    load_average: list[float] = Field(description="1, 5 and 15 minutes")


class MemoryStats(BaseModel):
    total_bytes: int
    available_bytes: int
    used_bytes: int
    percent: float


class SwapStats(BaseModel):
    total_bytes: int
    used_bytes: int
    free_bytes: int
    percent: float


class DiskStats(BaseModel):
    path: str = Field(description="The data directory")
    total_bytes: int
    used_bytes: int
    free_bytes: int
    percent: float


class NetworkStats(BaseModel):
    bytes_sent: int = Field(description="Since boot, every interface")
    bytes_recv: int
    packets_sent: int
    packets_recv: int
    bytes_sent_per_second: float = Field(description="Between the last two measurements")
    bytes_recv_per_second: float


class ProcessStats(BaseModel):
    pid: int
    rss_bytes: int
    cpu_percent: float = Field(description="Percent of one core: above 100 when several cores are busy")
    threads: int
    open_files: int
    uptime_seconds: float


class SystemSnapshot(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "timestamp": "2026-11-25T12:00:00.000000Z",
                    "cpu": {"percent": 12.5, "per_core_percent": [10.0, 15.0], "count": 2, "load_average": [0.4, 0.3, 0.2]},
                    "memory": {"total_bytes": 8_000_000_000, "available_bytes": 5_000_000_000, "used_bytes": 2_500_000_000, "percent": 37.5},
                    "swap": {"total_bytes": 2_000_000_000, "used_bytes": 0, "free_bytes": 2_000_000_000, "percent": 0.0},
                    "disk": {"path": "/srv/vur/data", "total_bytes": 100_000_000_000, "used_bytes": 40_000_000_000, "free_bytes": 60_000_000_000, "percent": 40.0},
                    "network": {
                        "bytes_sent": 123_456,
                        "bytes_recv": 654_321,
                        "packets_sent": 1_000,
                        "packets_recv": 2_000,
                        "bytes_sent_per_second": 512.0,
                        "bytes_recv_per_second": 2048.0,
                    },
                    "process": {"pid": 4242, "rss_bytes": 150_000_000, "cpu_percent": 3.0, "threads": 12, "open_files": 5, "uptime_seconds": 3600.0},
                }
            ]
        }
    )

    timestamp: datetime
    cpu: CpuStats
    memory: MemoryStats
    swap: SwapStats
    disk: DiskStats
    network: NetworkStats
    process: ProcessStats


# --- health -----------------------------------------------------------------

ComponentStatus = Literal["healthy", "degraded", "unhealthy", "unknown", "not_configured"]


class ComponentHealth(BaseModel):
    status: ComponentStatus
    detail: str


class DatabaseHealth(ComponentHealth):
    backend: str
    latency_ms: float | None


class StorageHealth(ComponentHealth):
    root: str
    free_bytes: int | None


class JobRunnerHealth(ComponentHealth):
    mode: Literal["inprocess", "external"]
    alive: bool | None = Field(description="In-process runner only")
    processes: int | None
    running_jobs: int | None
    last_heartbeat_at: datetime | None = Field(description="External runners: the latest heartbeat any job received")


class HealthComponents(BaseModel):
    database: DatabaseHealth
    storage: StorageHealth
    job_runner: JobRunnerHealth
    redis: ComponentHealth


class HealthReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "healthy",
                    "checked_at": "2026-11-25T12:00:00Z",
                    "components": {
                        "database": {"status": "healthy", "detail": "SELECT 1 answered", "backend": "sqlite", "latency_ms": 0.4},
                        "storage": {"status": "healthy", "detail": "writable", "root": "/srv/vur/data/artifacts", "free_bytes": 60_000_000_000},
                        "job_runner": {
                            "status": "healthy",
                            "detail": "in-process runner alive",
                            "mode": "inprocess",
                            "alive": True,
                            "processes": 1,
                            "running_jobs": 0,
                            "last_heartbeat_at": None,
                        },
                        "redis": {"status": "not_configured", "detail": "no Redis URL is configured"},
                    },
                }
            ]
        }
    )

    status: Literal["healthy", "degraded", "unhealthy"] = Field(
        description="unhealthy: the database or storage fails; degraded: another component fails; unknown and not_configured components do not count"
    )
    checked_at: datetime
    components: HealthComponents


# --- logs -------------------------------------------------------------------

LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class LogRecord(BaseModel):
    timestamp: datetime
    level: str
    event: str
    logger: str | None
    request_id: str | None
    fields: dict[str, Any] = Field(description="Every other key of the record; keys that look like secrets are never kept")


# --- models -----------------------------------------------------------------


class LiveError(BaseModel):
    scored_points: int = Field(description="Forecast points whose actual value has arrived")
    mae: float | None
    rmse: float | None


class ModelMonitor(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    status: ModelStatus
    algorithm: str
    latest_version: int | None
    metrics: dict[str, Any] = Field(description="Validation metrics of the last training")
    trained_at: datetime | None
    predictions_24h: int
    last_prediction_at: datetime | None
    live_error: LiveError


# --- alerts -----------------------------------------------------------------


class AlertRuleCreate(BaseModel):
    """An error rule: alert when a model's live error passes `threshold`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"model_id": "7c0e6a4e-1f0b-4a53-9d55-3f1f7a0e2b11", "metric": "mae", "threshold": 12.5, "window_hours": 24, "severity": "warning"}]},
    )

    model_id: uuid.UUID
    metric: Literal["mae", "rmse"] = "mae"
    threshold: StrictFloat | StrictInt = Field(gt=0, le=1e15, description="In the target's own units")
    window_hours: StrictInt = Field(default=24, ge=1, le=24 * 90, description="Predictions made in this many past hours count")
    severity: Literal["info", "warning", "error"] = "warning"


class AlertRuleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    model_id: uuid.UUID | None
    metric: str
    threshold: float
    window_hours: int
    severity: str
    enabled: bool
    created_at: datetime


class AlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str = Field(description="job_failed | stream_failed | stream_stalled | error_threshold | drift")
    severity: str
    status: str = Field(description="open | acknowledged | resolved")
    title: str
    message: str
    subject_type: str
    subject_id: uuid.UUID | None
    rule_id: uuid.UUID | None
    details: dict[str, Any]
    created_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
