"""System snapshots from psutil, and the task that pushes one on the "system" topic every
`system_metrics_interval_seconds`.

CPU percentages and network rates are measured between two samples. The sampler keeps
the previous one, taken when this module is imported, and measures again only once
`MIN_WINDOW_SECONDS` have passed: a window of microseconds (two calls in a row) says
nothing, so such a call gets the last measured figures instead. System CPU is computed
here from `psutil.cpu_times()`: `psutil.cpu_percent(interval=None)` keeps its previous
sample per thread, and requests are served by whichever pool thread is free.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import psutil
import structlog

from vur.core.db import utcnow
from vur.core.events import Event, bus
from vur.core.foreground import wait_for_quiet
from vur.monitoring.schemas import (
    CpuStats,
    DiskStats,
    MemoryStats,
    NetworkStats,
    ProcessStats,
    SwapStats,
    SystemSnapshot,
)

log = structlog.get_logger("vur.monitoring")

MIN_WINDOW_SECONDS = 0.25


def _busy_percent(before: Any, after: Any) -> float:
    """psutil's arithmetic: the share of CPU time neither idle nor waiting on I/O. Guest
    time is already counted in user time on Linux, so it is not added twice."""
    deltas = {field: max(0.0, getattr(after, field) - getattr(before, field)) for field in after._fields}
    total = sum(deltas.values()) - deltas.get("guest", 0.0) - deltas.get("guest_nice", 0.0)
    idle = deltas["idle"] + deltas.get("iowait", 0.0)
    return round(100 * (total - idle) / total, 1) if total > 0 else 0.0


@dataclass(frozen=True)
class _Rates:
    """What one window measured."""

    cpu_percent: float
    per_core_percent: list[float]
    process_cpu_percent: float
    bytes_sent_per_second: float
    bytes_recv_per_second: float


class SystemSampler:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process = psutil.Process(os.getpid())
        self._rates: _Rates | None = None
        self._window_start = time.monotonic()
        self._cpu_times = psutil.cpu_times()
        self._per_core_times = psutil.cpu_times(percpu=True)
        self._process.cpu_percent(interval=None)  # its first call only starts the window
        self._network = psutil.net_io_counters()

    def snapshot(self, data_dir: Path) -> SystemSnapshot:
        """Blocks for up to MIN_WINDOW_SECONDS on a call right after the import: run it in a thread."""
        with self._lock:
            rates = self._measure_rates()
            network = self._network
        memory = psutil.virtual_memory()
        swap = psutil.swap_memory()
        disk = psutil.disk_usage(str(data_dir))
        with self._process.oneshot():
            process = ProcessStats(
                pid=self._process.pid,
                rss_bytes=self._process.memory_info().rss,
                cpu_percent=rates.process_cpu_percent,
                threads=self._process.num_threads(),
                open_files=len(self._process.open_files()),
                uptime_seconds=round(time.time() - self._process.create_time(), 3),
            )
        return SystemSnapshot(
            timestamp=utcnow(),
            cpu=CpuStats(
                percent=rates.cpu_percent,
                per_core_percent=rates.per_core_percent,
                count=psutil.cpu_count() or len(rates.per_core_percent),
                load_average=list(psutil.getloadavg()),
            ),
            memory=MemoryStats(total_bytes=memory.total, available_bytes=memory.available, used_bytes=memory.used, percent=memory.percent),
            swap=SwapStats(total_bytes=swap.total, used_bytes=swap.used, free_bytes=swap.free, percent=swap.percent),
            disk=DiskStats(path=str(data_dir), total_bytes=disk.total, used_bytes=disk.used, free_bytes=disk.free, percent=disk.percent),
            network=NetworkStats(
                bytes_sent=network.bytes_sent,
                bytes_recv=network.bytes_recv,
                packets_sent=network.packets_sent,
                packets_recv=network.packets_recv,
                bytes_sent_per_second=rates.bytes_sent_per_second,
                bytes_recv_per_second=rates.bytes_recv_per_second,
            ),
            process=process,
        )

    def _measure_rates(self) -> _Rates:
        elapsed = time.monotonic() - self._window_start
        if elapsed < MIN_WINDOW_SECONDS:
            if self._rates is not None:
                return self._rates
            time.sleep(MIN_WINDOW_SECONDS - elapsed)  # only the first call, right after priming
        now = time.monotonic()
        elapsed = now - self._window_start
        cpu_times, per_core_times, network = psutil.cpu_times(), psutil.cpu_times(percpu=True), psutil.net_io_counters()
        self._rates = _Rates(
            cpu_percent=_busy_percent(self._cpu_times, cpu_times),
            # Not strict: a core plugged in or out is left out of one window instead of failing every one.
            per_core_percent=[_busy_percent(before, after) for before, after in zip(self._per_core_times, per_core_times, strict=False)],
            process_cpu_percent=self._process.cpu_percent(interval=None),
            bytes_sent_per_second=round((network.bytes_sent - self._network.bytes_sent) / elapsed, 3),
            bytes_recv_per_second=round((network.bytes_recv - self._network.bytes_recv) / elapsed, 3),
        )
        self._window_start, self._cpu_times, self._per_core_times, self._network = now, cpu_times, per_core_times, network
        return self._rates


SAMPLER = SystemSampler()


def _snapshot_when_quiet(data_dir: Path) -> SystemSnapshot:
    # psutil reads a few dozen /proc files, each a hand-off of the GIL a forecast would wait on.
    wait_for_quiet()
    return SAMPLER.snapshot(data_dir)


class SystemMetricsPublisher:
    """Publishes a snapshot on the bus every `interval` seconds, for every authenticated
    socket (no workspace); an interval of 0 publishes nothing."""

    def __init__(self, data_dir: Path, interval: float) -> None:
        self.data_dir = data_dir
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.create_task(self._run(), name="vur-system-metrics")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                snapshot = await anyio.to_thread.run_sync(_snapshot_when_quiet, self.data_dir)
                bus.publish(Event("system", "system_metrics", snapshot.model_dump(mode="json"), None))
            except Exception as exc:  # one failed snapshot (the data dir gone, say) must not end the stream
                log.warning("system_metrics_failed", error=repr(exc))
            await asyncio.sleep(self.interval)
