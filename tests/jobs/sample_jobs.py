"""Job types used only by the tests, loaded through the VUR_JOB_MODULES setting."""

from __future__ import annotations

import time
from typing import Any

from vur.jobs.registry import job
from vur.jobs.runner import JobContext


@job("tests.count", retry_safe=False)
def count(ctx: JobContext, steps: int = 5, delay: float = 0.2, fail_at: int | None = None) -> dict[str, Any]:
    """Reports progress `steps` times, `delay` seconds apart; fails at step `fail_at`."""
    for step in range(1, steps + 1):
        time.sleep(delay)
        if fail_at == step:
            raise ValueError(f"failing at step {step} as asked")
        ctx.progress(100 * step / steps, f"step {step}/{steps}")
    return {"steps": steps}


@job("tests.count_retry_safe", retry_safe=True, max_attempts=3)
def count_retry_safe(ctx: JobContext, steps: int = 5, delay: float = 0.2) -> dict[str, Any]:
    return count(ctx, steps=steps, delay=delay)
