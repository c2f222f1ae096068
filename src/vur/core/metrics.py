"""Prometheus metrics: requests per route and status, latency histograms, jobs by state.

`GET /metrics` reads this process's registry. What a job process counts reaches the API
process that runs it (the embedded runner) through the runner's queue: a counter made
with `relayed_counter` is reported from a job process as `CounterDeltas` (what it gained
since the last report) and added to the same counter of the API process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "vur_http_requests_total", "HTTP requests served", ["method", "route", "status"], registry=REGISTRY
)
HTTP_LATENCY = Histogram(
    "vur_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)


class JobStateCollector(Collector):
    """Reads job counts by state from the jobs table at scrape time, so every
    API replica and worker reports the same truth."""

    def __init__(self, count_by_status: Callable[[], dict[str, int]]):
        self._count_by_status = count_by_status

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("vur_jobs", "Jobs by status", labels=["status"])
        for status, count in sorted(self._count_by_status().items()):
            family.add_metric([status], count)
        yield family


_job_collector: JobStateCollector | None = None


def register_job_collector(count_by_status: Callable[[], dict[str, int]]) -> None:
    global _job_collector
    if _job_collector is not None:
        REGISTRY.unregister(_job_collector)
    _job_collector = JobStateCollector(count_by_status)
    REGISTRY.register(_job_collector)


# --- counters of job processes ------------------------------------------------------

# Relayed counters by family name (the name without `_total`).
RELAYED: dict[str, Counter] = {}

LabelPairs = tuple[tuple[str, str], ...]


def relayed_counter(name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
    """A counter of REGISTRY whose increments in a job process of the embedded runner
    are added to this one in the API process."""
    counter = Counter(name, documentation, labelnames, registry=REGISTRY)
    RELAYED[counter.describe()[0].name] = counter
    return counter


@dataclass(frozen=True)
class CounterDeltas:
    """What relayed counters gained in a job process since its last report:
    (family name, label pairs, amount) each."""

    deltas: tuple[tuple[str, LabelPairs, float], ...]


def _values(counters: Mapping[str, Counter]) -> dict[tuple[str, LabelPairs], float]:
    values: dict[tuple[str, LabelPairs], float] = {}
    for name, counter in counters.items():
        for family in counter.collect():
            for sample in family.samples:
                if sample.name == f"{name}_total":
                    values[(name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


class CounterReporter:
    """In a job process: reports what the relayed counters gained since the last report
    that went out. A report the queue refused is not lost: the next one carries it too."""

    def __init__(self, counters: Mapping[str, Counter] | None = None) -> None:
        self._counters = RELAYED if counters is None else counters
        self._lock = threading.Lock()
        self._sent: dict[tuple[str, LabelPairs], float] = {}

    def report(self, send: Callable[[CounterDeltas], bool]) -> None:
        """`send` answers whether the message went out."""
        with self._lock:
            current = _values(self._counters)
            deltas = tuple((name, labels, value - self._sent.get((name, labels), 0.0)) for (name, labels), value in current.items() if value > self._sent.get((name, labels), 0.0))
            if deltas and send(CounterDeltas(deltas)):
                self._sent = current


def add_counter_deltas(message: CounterDeltas, counters: Mapping[str, Counter] | None = None) -> None:
    """In the API process: a job process's report, added to the counters of the same names."""
    counters = RELAYED if counters is None else counters
    for name, labels, amount in message.deltas:
        counter = counters.get(name)
        if counter is None or not amount > 0:  # a counter this process does not have; NaN
            continue
        try:
            (counter.labels(**dict(labels)) if labels else counter).inc(amount)
        except ValueError:  # labels this process's counter does not have
            continue
