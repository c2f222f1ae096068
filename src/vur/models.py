"""Every table, imported in one place so that Alembic sees the whole schema."""

from vur.core.outbox import OutboxEvent
from vur.datasets.models import Dataset
from vur.identity.models import LoginFailure, RefreshToken, User, Workspace
from vur.jobs.models import Job
from vur.predictions.models import Prediction
from vur.registry.models import ModelVersion, RegisteredModel

__all__ = ["Dataset", "Job", "LoginFailure", "ModelVersion", "OutboxEvent", "Prediction", "RefreshToken", "RegisteredModel", "User", "Workspace"]
