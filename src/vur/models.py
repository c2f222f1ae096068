"""Every table, imported in one place so that Alembic sees the whole schema."""

from vur.core.outbox import OutboxEvent
from vur.datasets.models import Dataset
from vur.forge.models import DatasetExport, Document, DocumentVersion, Domain, FineTuningJob, InstructionDataset, InstructionItem, ProviderKey, ReviewAction, Segment, Template
from vur.identity.models import LoginFailure, RefreshToken, User, Workspace
from vur.insights.models import Machine, MachineCounter, Ranking
from vur.jobs.models import Job
from vur.monitoring.models import Alert, AlertRule
from vur.pipelines.models import Pipeline
from vur.predictions.models import DatabaseConnection, Prediction, PredictionStream
from vur.registry.models import LlmModel, ModelVersion, RegisteredModel
from vur.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery

__all__ = ["Alert", "AlertRule", "DatabaseConnection", "Dataset", "DatasetExport", "Document", "DocumentVersion", "Domain", "FineTuningJob", "InstructionDataset", "InstructionItem", "Job", "LlmModel", "LoginFailure", "Machine", "MachineCounter", "ModelVersion", "OutboxEvent", "Pipeline", "Prediction", "PredictionStream", "ProviderKey", "Ranking", "RefreshToken", "RegisteredModel", "ReviewAction", "Segment", "Template", "User", "Webhook", "WebhookAttempt", "WebhookDelivery", "Workspace"]
