"""Request and response shapes of the forge, as seed 004 (VR Forge) defines them."""

from __future__ import annotations

import re
import string
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

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
