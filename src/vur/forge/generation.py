"""Generation of instruction items from segments: plain async functions, no database.
The job (jobs.py) builds a `Plan` from the dataset and hands `run` two callbacks: one
that stores a batch of items, one that reports progress (and stops on a cancel). The
benchmark calls `run` the same way.

Every segment is one provider call; at most `concurrency` are in flight, and results are
stored in batches as they come, so that a slow answer never holds up the others.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vur.forge import providers, quality


@dataclass(frozen=True)
class Source:
    segment_id: uuid.UUID
    content: str


@dataclass(frozen=True)
class Plan:
    provider: str
    base_url: str
    api_key: str
    model: str
    # temperature, max_tokens, top_p: as given in generation_config.
    params: dict[str, Any]
    system_prompt: str
    user_prompt_template: str
    variables: dict[str, str]
    expected_language: str | None
    segments: list[Source]
    # (id, text) of the dataset's items already stored, for near-duplicate detection.
    existing: list[tuple[uuid.UUID, str]] = field(default_factory=list)

    def messages(self, content: str) -> list[dict[str, str]]:
        # The template was checked at creation: {content} and declared names only.
        user = self.user_prompt_template.format(**self.variables, content=content)
        return [{"role": "system", "content": f"{self.system_prompt}\n\n{providers.OUTPUT_INSTRUCTIONS}"}, {"role": "user", "content": user}]


@dataclass
class Report:
    created: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    # Why the whole run stopped early (a 401, an unknown model), if it did.
    fatal: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"items_created": self.created, "failed": len(self.failures), "failures": self.failures[:100], "error": self.fatal, "seconds": round(self.seconds, 3)}


def item_row(plan: Plan, source: Source, answer: providers.Answer, index: quality.DuplicateIndex) -> dict[str, Any]:
    """An item ready to store, with its quality checks."""
    item_id = uuid.uuid4()
    duplicate_of = index.add(item_id, quality.item_text(answer.fields))
    score, flags, measures = quality.assess(answer.fields, source.content, plan.expected_language, duplicate_of)
    return {
        "id": item_id,
        "segment_id": source.segment_id,
        **answer.fields,
        "quality_score": score,
        "quality_flags": flags,
        "generation_meta": {"provider": plan.provider, **answer.meta, "quality": measures},
    }


async def run(
    plan: Plan,
    policy: providers.CallPolicy,
    *,
    concurrency: int,
    batch_size: int,
    store: Callable[[list[dict[str, Any]]], int],
    progress: Callable[[int, int], None],
) -> Report:
    """Ask for one item per segment and store them. `store` and `progress` are blocking
    (database) functions: they run in a thread so that calls in flight go on meanwhile.
    An exception from either (a cancel) stops the run and cancels the calls in flight."""
    started = time.perf_counter()
    report, rows, done, total = Report(), [], 0, len(plan.segments)
    index = quality.DuplicateIndex()
    for item_id, text in plan.existing:
        index.add(item_id, text)
    client = providers.make_client(plan.base_url, plan.api_key, policy)
    gate = asyncio.Semaphore(concurrency)

    async def one(source: Source) -> tuple[Source, providers.Answer | providers.ProviderFailure]:
        async with gate:
            try:
                return source, await providers.generate_item(client, plan.model, plan.messages(source.content), plan.params, policy)
            except providers.ProviderFailure as failure:
                return source, failure

    tasks = [asyncio.create_task(one(source)) for source in plan.segments]
    try:
        for next_done in asyncio.as_completed(tasks):
            source, outcome = await next_done
            done += 1
            if isinstance(outcome, providers.ProviderFailure):
                if outcome.fatal:
                    report.fatal = outcome.reason
                    break
                report.failures.append({"segment_id": str(source.segment_id), "reason": outcome.reason})
            else:
                rows.append(item_row(plan, source, outcome, index))
            if len(rows) >= batch_size:
                report.created += await asyncio.to_thread(store, rows)
                rows = []
            if done % batch_size == 0 or done == total:
                await asyncio.to_thread(progress, done, total)
        if rows:
            report.created += await asyncio.to_thread(store, rows)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()
    report.seconds = time.perf_counter() - started
    return report
