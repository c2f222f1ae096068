"""Every table, imported in one place so that Alembic sees the whole schema."""

from vur.core.outbox import OutboxEvent
from vur.datasets.models import Dataset
from vur.identity.models import LoginFailure, RefreshToken, User, Workspace
from vur.jobs.models import Job
from vur.monitoring.models import Alert, AlertRule
from vur.pipelines.models import Pipeline
from vur.predictions.models import DatabaseConnection, Prediction, PredictionStream
from vur.registry.models import ModelVersion, RegisteredModel

__all__ = ["Alert", "AlertRule", "DatabaseConnection", "Dataset", "Job", "LoginFailure", "ModelVersion", "OutboxEvent", "Pipeline", "Prediction", "PredictionStream", "RefreshToken", "RegisteredModel", "User", "Workspace"]
