"""The system sampler without a server: CPU is measured over a real window whichever
thread asks (psutil's own non-blocking cpu_percent keeps one window per thread)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from vur.monitoring.system import MIN_WINDOW_SECONDS, SystemSampler


def busy(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


def test_cpu_is_measured_whatever_thread_asks(tmp_path: Path) -> None:
    sampler = SystemSampler()
    busy(MIN_WINDOW_SECONDS * 2)
    snapshots = []
    reader = threading.Thread(target=lambda: snapshots.append(sampler.snapshot(tmp_path)))
    reader.start()
    reader.join(10)
    [snapshot] = snapshots
    # This process kept one core busy for the whole window.
    assert snapshot.cpu.percent > 0 and max(snapshot.cpu.per_core_percent) > 0
    assert snapshot.process.cpu_percent > 0


def test_a_call_right_after_another_reuses_the_last_window(tmp_path: Path) -> None:
    sampler = SystemSampler()
    busy(MIN_WINDOW_SECONDS * 2)
    first = sampler.snapshot(tmp_path)
    second = sampler.snapshot(tmp_path)
    assert (second.cpu.percent, second.cpu.per_core_percent) == (first.cpu.percent, first.cpu.per_core_percent)
    assert second.process.cpu_percent == first.process.cpu_percent
    assert second.network.bytes_sent_per_second == first.network.bytes_sent_per_second
