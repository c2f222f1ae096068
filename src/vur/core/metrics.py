"""Prometheus metrics: requests per route and status, latency histograms, jobs by state."""

from __future__ import annotations

from collections.abc import Callable, Iterable

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
