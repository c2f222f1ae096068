"""Job types: a name (`domain.verb`) bound to a plain function `fn(ctx, **payload) -> dict`.

Modules that define jobs must import heavy libraries inside the functions, not at the top:
runners import every job module at start.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

BUILTIN_JOB_MODULES = ("vur.forecasting.training", "vur.predictions.jobs", "vur.pipelines.jobs", "vur.forge.jobs", "vur.insights.jobs")


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: Callable[..., dict[str, Any] | None]
    # Safe to run again from the start if its worker died mid-way.
    retry_safe: bool
    max_attempts: int
    # Called in the same transaction when the job ends failed or cancelled, whoever ends
    # it (the job itself, its runner after a crash, the stale-heartbeat sweeper, a cancel).
    on_unsuccessful: Callable[[Any, Any], None] | None = None


_REGISTRY: dict[str, JobSpec] = {}


def job(
    name: str,
    *,
    retry_safe: bool = False,
    max_attempts: int = 1,
    on_unsuccessful: Callable[[Any, Any], None] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        _REGISTRY[name] = JobSpec(name, func, retry_safe, max_attempts if retry_safe else 1, on_unsuccessful)
        return func

    return register


def load_job_modules(extra: Iterable[str] = ()) -> None:
    for module in (*BUILTIN_JOB_MODULES, *extra):
        importlib.import_module(module)


def get_spec(name: str) -> JobSpec | None:
    return _REGISTRY.get(name)
