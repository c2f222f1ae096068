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
def count_retry_safe(ctx: JobContext, steps: int = 5, delay: float = 0.2, first_attempt_delay: float | None = None) -> dict[str, Any]:
    """`first_attempt_delay`: a slow first run (to be interrupted) and quick retries."""
    if first_attempt_delay is not None and ctx.attempt == 1:
        delay = first_attempt_delay
    return count(ctx, steps=steps, delay=delay)


@job("tests.crash", retry_safe=False)
def crash(ctx: JobContext, after_steps: int = 1, delay: float = 0.1, exit_code: int = 3) -> dict[str, Any]:
    """Reports progress, then kills the worker process it runs in (as a segfault or the
    OOM killer would): no exception, no cleanup."""
    import os

    for step in range(1, after_steps + 1):
        time.sleep(delay)
        ctx.progress(10 * step, f"step {step}")
    os._exit(exit_code)


@job("tests.read_missing", retry_safe=False)
def read_missing(ctx: JobContext) -> dict[str, Any]:
    """Fails as a job does that meets a file the store lost: an error naming its path."""
    (ctx.settings.data_dir / "artifacts" / "lost.parquet").read_bytes()
    return {}
