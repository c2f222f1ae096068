"""Every table, imported in one place so that Alembic sees the whole schema."""

from vur.core.outbox import OutboxEvent
from vur.datasets.models import Dataset
from vur.forge.models import Document, DocumentVersion, Domain, Segment, Template
from vur.identity.models import LoginFailure, RefreshToken, User, Workspace
from vur.insights.models import Machine, Ranking
from vur.jobs.models import Job
from vur.monitoring.models import Alert, AlertRule
from vur.pipelines.models import Pipeline
from vur.predictions.models import DatabaseConnection, Prediction, PredictionStream
from vur.registry.models import ModelVersion, RegisteredModel
from vur.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery

__all__ = ["Alert", "AlertRule", "DatabaseConnection", "Dataset", "Document", "DocumentVersion", "Domain", "Job", "LoginFailure", "Machine", "ModelVersion", "OutboxEvent", "Pipeline", "Prediction", "PredictionStream", "RefreshToken", "Ranking", "RegisteredModel", "Segment", "Template", "User", "Webhook", "WebhookAttempt", "WebhookDelivery", "Workspace"]
