"""Instruction datasets with items, written straight to the database: for tests of what
comes after generation and review (exports, training jobs)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from vur.core.db import Database
from vur.datasets.models import Dataset
from vur.forge.models import Domain, InstructionDataset, InstructionItem, Template

SYSTEM_PROMPT = "Você é um assistente útil."


@dataclass(frozen=True)
class Item:
    instruction: str = "Qual é a capital do Brasil?"
    input_text: str = ""
    ideal_response: str = "A capital do Brasil é Brasília."
    bad_response: str = "Rio de Janeiro"
    quality_score: float = 0.9
    review_status: str = "approved"


def instruction_dataset(database: Database, workspace_id: str, items: list[Item]) -> str:
    """A dataset of kind instruction in the workspace, with a domain, a template and these items."""
    workspace = uuid.UUID(workspace_id)
    with database.session() as session:
        domain = Domain(workspace_id=workspace, name="Export", slug=f"export-{uuid.uuid4().hex[:8]}", config={})
        session.add(domain)
        session.flush()
        template = Template(workspace_id=workspace, domain_id=domain.id, name="chat", system_prompt=SYSTEM_PROMPT, user_prompt_template="{content}", variables=[], config={})
        dataset = Dataset(workspace_id=workspace, kind="instruction", name="Dataset Chat", columns=[], detected_types={}, suggestions={}, config={}, steps=[])
        session.add_all([template, dataset])
        session.flush()
        counts = {status: sum(1 for item in items if item.review_status == status) for status in ("approved", "rejected", "pending")}
        session.add(
            InstructionDataset(
                dataset_id=dataset.id,
                workspace_id=workspace,
                domain_id=domain.id,
                template_id=template.id,
                provider="openai",
                status="ready",
                generation_config={},
                segment_filter={},
                total_items=len(items),
                approved_items=counts["approved"],
                rejected_items=counts["rejected"],
                pending_items=counts["pending"],
                generation_report={},
            )
        )
        session.flush()
        for n, item in enumerate(items):
            # One per (dataset, segment, template): no segment here, so the template varies.
            session.add(
                InstructionItem(
                    workspace_id=workspace,
                    dataset_id=dataset.id,
                    template_id=template.id if n == 0 else None,
                    quality_flags={},
                    generation_meta={},
                    **item.__dict__,
                )
            )
        return str(dataset.id)
