"""Request and response shapes of the forge, as seed 004 (VR Forge) defines them."""

from __future__ import annotations

import re
import string
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

SegmentType = Literal["paragraph", "clause", "chat_message", "faq", "crm_record"]
DocumentStatus = Literal["uploaded", "processing", "processed", "failed"]
SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,49}$"


# --- domains ----------------------------------------------------------------------------


class DomainCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "VR Chat", "slug": "vr-chat", "description": "IA conversacional geral", "config": {"primary_model": "llama-3.1-8b-instruct"}}]
        },
    )

    name: str = Field(min_length=1, max_length=100)
    slug: str = Field(min_length=1, max_length=100, pattern=SLUG, description="Lower-case letters, digits and single hyphens; unique in the workspace")
    description: str | None = Field(default=None, max_length=5000)
    config: dict[str, Any] = Field(default_factory=dict)


class DomainUpdate(BaseModel):
    """Only the fields given change."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "VR Chat Updated", "slug": "vr-chat-updated", "description": "Nova descrição", "config": {"new_field": "value"}, "is_active": False}
            ]
        },
    )

    name: str | None = Field(default=None, min_length=1, max_length=100)
    slug: str | None = Field(default=None, min_length=1, max_length=100, pattern=SLUG)
    description: str | None = Field(default=None, max_length=5000)
    config: dict[str, Any] | None = None
    is_active: bool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> DomainUpdate:
        # Only the description may be cleared; null for the others would break the row.
        nulled = [name for name in ("name", "slug", "config", "is_active") if name in self.model_fields_set and getattr(self, name) is None]
        if nulled:
            raise ValueError(f"{', '.join(nulled)} cannot be null")
        return self


class DomainRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    slug: str
    description: str | None
    config: dict[str, Any]
    is_active: bool
    created_at: datetime
    updated_at: datetime


# --- documents and segments ---------------------------------------------------------------


class DocumentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    domain_id: uuid.UUID
    use_case: str | None
    filename: str
    original_filename: str
    s3_key: str
    content_type: str
    file_size: int
    status: DocumentStatus
    metadata: dict[str, Any] = Field(validation_alias=AliasChoices("meta", "metadata"))
    error_message: str | None = Field(validation_alias=AliasChoices("error", "error_message"), description="Why the last processing failed")
    current_version_id: uuid.UUID | None = Field(description="The latest version processed successfully; its segments are the document's")
    current_version: int | None = Field(description="That version's number (1, 2, ...)")
    created_at: datetime
    updated_at: datetime


class SegmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_length: int = Field(default=1000, ge=50, le=20_000, description="Characters per segment at most; longer units are split on sentence boundaries")
    overlap: int = Field(default=0, ge=0, le=10_000, description="Characters (at most) that a part repeats from the end of the part before it")

    @model_validator(mode="after")
    def _overlap_below_half(self) -> SegmentConfig:
        if self.overlap > self.max_length // 2:
            raise ValueError(f"overlap must be at most half of max_length ({self.max_length // 2})")
        return self


class ProcessRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"segment_type": "paragraph", "segment_config": {"max_length": 500, "overlap": 50}}]})

    segment_type: SegmentType
    segment_config: SegmentConfig = Field(default_factory=SegmentConfig)


class ProcessAccepted(BaseModel):
    status: DocumentStatus
    version_id: uuid.UUID
    job_id: uuid.UUID


class SegmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    domain_id: uuid.UUID
    document_id: uuid.UUID
    document_version_id: uuid.UUID
    use_case: str | None
    segment_type: SegmentType
    content: str
    position: int
    metadata: dict[str, Any] = Field(validation_alias=AliasChoices("meta", "metadata"))
    created_at: datetime


# --- templates ----------------------------------------------------------------------------


class TemplateCreate(BaseModel):
    """`user_prompt_template` is filled in with str.format rules: `{content}` (required)
    is the segment, any other `{name}` must be listed in `variables`, and a literal brace
    is written twice (`{{`, `}}`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "domain_id": "0b6f8a5e-2a51-4a4f-9a55-3d1c1f0e7b21",
                    "use_case": "chat-training",
                    "name": "Template Chat Básico",
                    "system_prompt": "Você é um assistente útil e prestativo.",
                    "user_prompt_template": "Baseado no seguinte contexto: {content}\n\nGere uma resposta adequada em tom {tone}.",
                    "variables": ["tone"],
                    "target_model_family": "llama",
                    "config": {"temperature": 0.7, "max_tokens": 1000},
                }
            ]
        },
    )

    domain_id: uuid.UUID
    use_case: str | None = Field(default=None, max_length=100)
    name: str = Field(min_length=1, max_length=100)
    system_prompt: str = Field(min_length=1, max_length=20_000)
    user_prompt_template: str = Field(min_length=1, max_length=20_000)
    variables: list[str] = Field(default_factory=list, max_length=50, description="Placeholders other than {content} that the template may use")
    target_model_family: str | None = Field(default=None, max_length=50)
    config: dict[str, Any] = Field(default_factory=dict)

    @field_validator("variables")
    @classmethod
    def _variable_names(cls, names: list[str]) -> list[str]:
        bad = [name for name in names if not re.fullmatch(IDENTIFIER, name) or name == "content"]
        if bad:
            raise ValueError(f"variables must be distinct identifiers other than 'content': {bad}")
        if len(set(names)) != len(names):
            raise ValueError("variables must be distinct")
        return names


def template_problems(template: str, variables: list[str]) -> dict[str, str]:
    """What is wrong with a user prompt template, by field: nothing when it is usable."""
    try:
        placeholders = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        return {"user_prompt_template": f"{exc} (write a literal brace as {{{{ or }}}})"}
    fields = [name for name, _, _ in placeholders]
    specs = sorted({name for name, spec, conversion in placeholders if spec or conversion})
    problems = []
    if "content" not in fields:
        problems.append("must contain the {content} placeholder")
    # Attribute or index access ({content.__class__}, {x[0]}) and positional {} are refused.
    odd = sorted({name for name in fields if not name or not name.isidentifier()})
    if odd:
        problems.append(f"placeholders must be plain names, not {', '.join(repr('{' + n + '}') for n in odd)}")
    if specs:
        problems.append(f"placeholders take no format spec or conversion: {', '.join(repr(n) for n in specs)}")
    undeclared = sorted({name for name in fields if name.isidentifier() and name != "content" and name not in variables})
    if undeclared:
        problems.append(f"undeclared placeholders {undeclared}: list them in variables")
    return {"user_prompt_template": "; ".join(problems)} if problems else {}


class TemplateRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    domain_id: uuid.UUID
    use_case: str | None
    name: str
    system_prompt: str
    user_prompt_template: str
    variables: list[str]
    target_model_family: str | None
    config: dict[str, Any]
    is_active: bool
    created_at: datetime
    updated_at: datetime


# --- instruction datasets -----------------------------------------------------------------

Provider = Literal["openai", "gemini", "together", "openai_compatible"]
InstructionDatasetStatus = Literal["draft", "generating", "ready", "archived"]
ReviewStatus = Literal["pending", "approved", "rejected"]


class GenerationConfig(BaseModel):
    """How items are asked for. `base_url` is where an openai_compatible server answers
    (vLLM, Ollama, llama.cpp: e.g. http://localhost:11434/v1); `variables` fill the
    template's placeholders other than {content}; `language` (pt, en, es) is what the
    items are expected in (default: the language of each segment)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, min_length=1, max_length=200)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=32_000)
    top_p: float | None = Field(default=None, gt=0, le=1)
    base_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://[^\s/$.?#][^\s]*$")
    variables: dict[str, str] = Field(default_factory=dict, max_length=50)
    language: Literal["pt", "en", "es"] | None = None


class SegmentFilter(BaseModel):
    """Which segments (of the documents' current versions) generation draws from; the
    dataset's domain unless `domain_id` says otherwise."""

    model_config = ConfigDict(extra="forbid")

    segment_type: SegmentType | None = None
    domain_id: uuid.UUID | None = None
    document_id: uuid.UUID | None = None
    use_case: str | None = Field(default=None, max_length=100)


class InstructionDatasetCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "domain_id": "0b6f8a5e-2a51-4a4f-9a55-3d1c1f0e7b21",
                    "template_id": "5d1c1f0e-7b21-4a4f-9a55-0b6f8a5e2a51",
                    "use_case": "chat-training",
                    "name": "Dataset Chat VR 2024",
                    "description": "Dataset para treinamento de chat",
                    "provider": "openai",
                    "target_model_family": "llama",
                    "generation_config": {"model": "gpt-4o-mini", "temperature": 0.7, "max_tokens": 1000},
                    "segment_filter": {"segment_type": "paragraph"},
                }
            ]
        },
    )

    domain_id: uuid.UUID
    template_id: uuid.UUID | None = None
    use_case: str | None = Field(default=None, max_length=100)
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    provider: Provider
    target_model_family: str | None = Field(default=None, max_length=50)
    generation_config: GenerationConfig = Field(default_factory=GenerationConfig)
    segment_filter: SegmentFilter = Field(default_factory=SegmentFilter)

    @model_validator(mode="after")
    def _base_url_for_compatible_only(self) -> InstructionDatasetCreate:
        config = self.generation_config
        if self.provider == "openai_compatible" and not (config.base_url and config.model):
            raise ValueError("an openai_compatible provider needs generation_config.base_url and generation_config.model")
        if self.provider != "openai_compatible" and config.base_url:
            raise ValueError(f"generation_config.base_url is only for openai_compatible; {self.provider}'s comes from the server settings")
        return self


class InstructionDatasetRead(BaseModel):
    """Seed 004's dataset, with `kind` (as every row of /api/v1/datasets), the latest
    generation job and its report (items created, failures with their reasons)."""

    id: uuid.UUID
    kind: Literal["instruction"] = "instruction"
    domain_id: uuid.UUID
    template_id: uuid.UUID | None
    use_case: str | None
    name: str
    description: str | None
    provider: str
    target_model_family: str | None
    status: InstructionDatasetStatus
    version: int
    generation_config: dict[str, Any]
    segment_filter: dict[str, Any]
    total_items: int
    approved_items: int
    rejected_items: int
    pending_items: int
    job_id: uuid.UUID | None
    generation_report: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class InstructionDatasetUpdate(BaseModel):
    """Only the fields given change. `archived: true` retires the dataset (it can no longer
    generate); `false` brings it back. A change to what generation uses bumps `version`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"template_id": "5d1c1f0e-7b21-4a4f-9a55-0b6f8a5e2a51", "generation_config": {"model": "gpt-4o-mini", "temperature": 0.3}}]})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    template_id: uuid.UUID | None = None
    use_case: str | None = Field(default=None, max_length=100)
    target_model_family: str | None = Field(default=None, max_length=50)
    generation_config: GenerationConfig | None = None
    segment_filter: SegmentFilter | None = None
    archived: StrictBool | None = None


class GenerateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"dataset_id": "0b6f8a5e-2a51-4a4f-9a55-3d1c1f0e7b21", "max_items": 100, "batch_size": 10}]},
    )

    dataset_id: uuid.UUID
    segment_ids: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=10_000, description="Default: the segments matching the dataset's segment_filter")
    max_items: int | None = Field(default=None, ge=1, le=10_000, description="Items to create at most in this run")
    batch_size: int = Field(default=10, ge=1, le=100, description="Items stored per transaction")


class GenerateAccepted(BaseModel):
    status: InstructionDatasetStatus
    items_created: int
    job_id: uuid.UUID


# --- review -------------------------------------------------------------------------------


class ItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    dataset_id: uuid.UUID
    segment_id: uuid.UUID | None
    template_id: uuid.UUID | None
    instruction: str
    input_text: str
    ideal_response: str
    bad_response: str
    explanation: str
    quality_score: float
    quality_flags: dict[str, Any]
    review_status: ReviewStatus
    created_at: datetime
    updated_at: datetime


class PendingItemRead(ItemRead):
    dataset_name: str


Reviewer = Field(default=None, min_length=1, max_length=100, description="Who reviews; default: the authenticated user's email")


class ApproveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reviewer_id": "user-123", "justification": "Item aprovado após revisão"}]})

    reviewer_id: str | None = Reviewer
    justification: str | None = Field(default=None, max_length=5000)


class RejectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reviewer_id": "user-123", "justification": "Resposta incorreta ou de baixa qualidade"}]})

    reviewer_id: str | None = Reviewer
    justification: str = Field(min_length=1, max_length=5000, description="Why the item is rejected (required)")

    @field_validator("justification")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a rejection needs a justification")
        return value


EDITABLE_FIELDS = ("instruction", "input_text", "ideal_response", "bad_response", "explanation")


class EditRequest(BaseModel):
    """At least one of the item's fields; the others stay as they are."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "reviewer_id": "user-123",
                    "instruction": "Instrução editada",
                    "ideal_response": "Resposta ideal editada",
                    "justification": "Correções necessárias para melhorar qualidade",
                }
            ]
        },
    )

    reviewer_id: str | None = Reviewer
    instruction: str | None = Field(default=None, min_length=1, max_length=20_000)
    input_text: str | None = Field(default=None, max_length=20_000)
    ideal_response: str | None = Field(default=None, min_length=1, max_length=20_000)
    bad_response: str | None = Field(default=None, min_length=1, max_length=20_000)
    explanation: str | None = Field(default=None, max_length=20_000)
    justification: str | None = Field(default=None, max_length=5000)

    @model_validator(mode="after")
    def _some_field(self) -> EditRequest:
        given = [name for name in EDITABLE_FIELDS if name in self.model_fields_set]
        if not given:
            raise ValueError(f"give at least one of {', '.join(EDITABLE_FIELDS)}")
        nulled = [name for name in given if getattr(self, name) is None]
        if nulled:
            raise ValueError(f"{', '.join(nulled)} cannot be null")
        return self

    def changes(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in EDITABLE_FIELDS if name in self.model_fields_set}


class ReviewRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    dataset_item_id: uuid.UUID = Field(validation_alias=AliasChoices("item_id", "dataset_item_id"))
    action: Literal["approve", "reject", "edit"]
    reviewer_id: str | None
    reviewed_by: uuid.UUID | None = Field(description="The authenticated user who made the review")
    justification: str | None
    previous_values: dict[str, Any] | None
    new_values: dict[str, Any] | None
    created_at: datetime


# --- provider keys ------------------------------------------------------------------------


class ProviderKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"provider": "openai", "api_key": "sk-proj-0123456789abcdef"}]})

    provider: Provider
    api_key: str = Field(min_length=8, max_length=500, pattern=r"^\S+$")


class ProviderKeyRead(BaseModel):
    """A stored key, shown only by its last four characters."""

    model_config = ConfigDict(from_attributes=True)

    provider: Provider
    last4: str
    created_at: datetime
    updated_at: datetime
